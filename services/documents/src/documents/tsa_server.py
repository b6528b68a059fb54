"""A small RFC 3161 timestamp authority over HTTP, for tests and embedded mode.

It speaks the real protocol (``application/timestamp-query`` in, ``timestamp-reply`` out), so
the sealing code talks to it exactly as to a production TSA through ``DOCUMENTS_TSA_URL``:
nothing in the signing path knows it is local. The tokens are produced by pyHanko's
``DummyTimeStamper`` with the development PKI's TSA certificate (extended key usage
timeStamping, issued by the dev CA), so they validate against that CA and nothing else.

Embedded mode runs one in-process (a daemon thread on 127.0.0.1, an ephemeral port) when no
``DOCUMENTS_TSA_URL`` is given, so a fresh checkout produces PAdES B-T seals like production.
Its time is this machine's clock and its certificate a test one: it is no substitute for a
qualified TSA, which production names in ``DOCUMENTS_TSA_URL``.
"""

from __future__ import annotations

import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from asn1crypto import cms, core, tsp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.sign import general
from pyhanko.sign.general import simple_cms_attribute
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

__all__ = ["LocalTsa"]

_MAX_REQUEST = 64 * 1024  # a TimeStampReq is a few hundred bytes

# Fail at import time, not at the first timestamp, if a pyHanko upgrade renames the hook.
if not callable(getattr(DummyTimeStamper, "_sign_tst_info", None)):  # pragma: no cover
    raise ImportError("pyHanko no longer has DummyTimeStamper._sign_tst_info: revisit documents.tsa_server")


class _PreloadedKeyTimeStamper(DummyTimeStamper):
    """DummyTimeStamper signing with a key parsed once.

    pyHanko's version re-parses the TSA's RSA key for every token, and cryptography re-checks
    an RSA key on every load (tens of milliseconds): most of a local timestamp's cost. The
    signing-certificate attribute, the same for every token, is encoded once too.
    """

    def __init__(self, key: rsa.RSAPrivateKey, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._key = key
        self._signing_certificate = simple_cms_attribute(
            "signing_certificate", general.as_signing_certificate(self.tsa_cert)).dump()

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str,
                       dt: datetime) -> tuple[bytes, cms.CMSAttributes]:
        digest = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        digest.update(tst_info_data)
        signed_attrs = cms.CMSAttributes([
            simple_cms_attribute("content_type", "tst_info"),
            simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
            cms.CMSAttribute.load(self._signing_certificate),
            simple_cms_attribute("message_digest", digest.finalize()),
        ])
        signature = self._key.sign(signed_attrs.dump(), padding.PKCS1v15(),
                                   get_pyca_cryptography_hash(md_algorithm.upper()))
        return signature, signed_attrs


class _Handler(BaseHTTPRequestHandler):
    server: _TsaHttpServer
    # HTTP/1.1: the sealer keeps its connection open between seals; an idle one is closed.
    protocol_version = "HTTP/1.1"
    timeout = 60
    # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (40 ms) on a kept-alive connection.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_REQUEST:
            self.send_error(400, "bad timestamp request")
            return
        try:
            request = tsp.TimeStampReq.load(self.rfile.read(length))
            data = self.server.stamper.request_tsa_response(request).dump()
        except ValueError:
            self.send_error(400, "bad timestamp request")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        return None


class _TsaHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    stamper: _PreloadedKeyTimeStamper


class LocalTsa:
    """An RFC 3161 TSA listening on ``host`` (default loopback) until :meth:`stop`."""

    def __init__(self, tsa_cert: Path, tsa_key: Path, ca_cert: Path, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        key = serialization.load_pem_private_key(Path(tsa_key).read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{tsa_key}: the local TSA signs with RSA keys only")
        key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        self._server = _TsaHttpServer((host, port), _Handler)
        self._server.stamper = _PreloadedKeyTimeStamper(
            key,
            tsa_cert=_asn1_cert(tsa_cert),
            tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
            certs_to_embed=SimpleCertificateStore.from_certs([_asn1_cert(ca_cert)]),
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/tsa"

    def start(self) -> LocalTsa:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="local-tsa",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalTsa:
        return self.start()

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def _asn1_cert(path: Path) -> asn1_x509.Certificate:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
