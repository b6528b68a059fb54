"""Signer plugins: a key that never leaves its device (a remote signer) seals like a local one."""

from __future__ import annotations

from typing import ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from documents import tasks
from documents.builders import (
    FileRef,
    PadesSealer,
    SealIdentity,
    build_segnatura,
    render_pdf,
    verify_p7m,
    verify_seal,
    verify_segnatura,
)
from documents.services import get_package
from documents.signers import SIGNERS, Signer, register_signer
from documents.tsa_server import LocalTsa


class _RemoteKey(rsa.RSAPrivateKey):
    """Stands in for an HSM or a remote-seal service: signs on request, never exports the key."""

    def __init__(self, device_key: rsa.RSAPrivateKey) -> None:
        self._device_key = device_key
        self.calls = 0

    def sign(self, data, padding, algorithm):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self._device_key.sign(data, padding, algorithm)

    def public_key(self) -> rsa.RSAPublicKey:
        return self._device_key.public_key()

    @property
    def key_size(self) -> int:
        return self._device_key.key_size

    def private_bytes(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise TypeError("the key cannot leave the device")

    def private_numbers(self):  # type: ignore[no-untyped-def]
        raise TypeError("the key cannot leave the device")

    def decrypt(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise TypeError("a seal key does not decrypt")

    def __copy__(self) -> _RemoteKey:
        return self

    def __deepcopy__(self, memo: dict) -> _RemoteKey:
        return self


@pytest.fixture
def signers_remote_plugin(documents_pki_dir):  # type: ignore[no-untyped-def]
    @register_signer
    class RemoteTestSigner(Signer):
        name: ClassVar[str] = "remote-test"
        key: ClassVar[_RemoteKey | None] = None

        def load(self, settings):  # type: ignore[no-untyped-def]
            from documents.builders import DEV_P12_PASSWORD

            key, cert, chain = pkcs12.load_key_and_certificates(
                (documents_pki_dir / "seal.p12").read_bytes(), DEV_P12_PASSWORD.encode())
            RemoteTestSigner.key = _RemoteKey(key)
            return SealIdentity(key=RemoteTestSigner.key, cert=cert, chain=tuple(chain))

    yield RemoteTestSigner
    SIGNERS.pop("remote-test")


@pytest.fixture
def documents_environ(documents_environ: dict[str, str], signers_remote_plugin) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {**documents_environ, "DOCUMENTS_SEAL_SIGNER": "remote-test"}


def test_a_remote_signer_seals_pades_cades_and_xades(documents_pki_dir, signers_remote_plugin,
                                                     documents_runtime, documents_payload) -> None:
    sealer = PadesSealer(signers_remote_plugin().load(documents_runtime.settings))
    trust = [documents_pki_dir / "ca.pem"]
    payload = documents_payload()
    pdf = render_pdf(payload["document"], {})
    with LocalTsa(documents_pki_dir / "tsa.pem", documents_pki_dir / "tsa.key", trust[0]) as tsa:
        sealed = sealer.seal(pdf, reason="Prova", location="Clusone", timestamper_url=tsa.url)
        p7m = sealer.sign_cades(sealed, timestamper_url=tsa.url)
    primary = FileRef("domanda.pdf", "application/pdf", sealed, role="primary", sealed=True)
    segnatura = build_segnatura(payload["meta"], primary, [], signer=sealer)

    assert verify_seal(sealed, trust).ok
    assert verify_p7m(p7m, trust).ok
    assert verify_segnatura(segnatura, trust).ok
    assert signers_remote_plugin.key.calls >= 3


def test_the_worker_uses_the_configured_signer_plugin(documents_build, documents_worker,
                                                      signers_remote_plugin) -> None:
    package_id = documents_build()
    assert isinstance(documents_worker.sealer.identity.key, _RemoteKey)
    # The build signed through the remote key: the PAdES seal and the Segnatura's XAdES.
    assert documents_worker.sealer.identity.key is signers_remote_plugin.key
    assert signers_remote_plugin.key.calls >= 2
    with documents_worker.session_factory() as session:
        assert get_package(session, package_id).status == "built"
    assert tasks.deliver_package.run(package_id=package_id) == "delivered"
    primary = documents_worker.store.path(package_id, "domanda-K7P2M9QX.pdf").read_bytes()
    assert documents_worker.verify_seal(primary).ok
