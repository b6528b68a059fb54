"""Where the seal key lives: signer plugins chosen by ``DOCUMENTS_SEAL_SIGNER``.

A signer plugin turns the settings into a :class:`~documents.builders.SealIdentity` (key,
certificate, chain). Everything that seals — PAdES, CAdES, the XAdES of the Segnatura —
only ever calls ``identity.key.sign(data, padding, hash)`` / ``sign(data, ECDSA(hash))``
on that key object, never reads the key's bytes. That is the whole remote-signing
interface:

* ``pkcs12`` (default): the key and certificate from a PKCS#12 file
  (``DOCUMENTS_SEAL_P12_FILE`` + ``DOCUMENTS_SEAL_P12_PASSWORD``), parsed once per process.
* a **remote** signer (an HSM, a qualified remote-seal service) registers a plugin with
  :func:`register_signer` whose :meth:`Signer.load` returns a ``SealIdentity`` built from
  the seal certificate and a subclass of ``cryptography``'s ``RSAPrivateKey`` (or
  ``EllipticCurvePrivateKey``) whose ``sign()`` sends the digest to the service and returns
  the raw signature, and whose ``private_bytes()`` raises (the key never leaves the device).
  No other change is needed: the sealers accept such a key as they accept a local one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .builders import SealIdentity

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["SIGNERS", "Pkcs12Signer", "Signer", "register_signer"]


class Signer:
    """One way of obtaining the seal identity; ``load`` is called once per process."""

    name: ClassVar[str]

    def load(self, settings: Settings) -> SealIdentity:
        raise NotImplementedError


SIGNERS: dict[str, type[Signer]] = {}


def register_signer(cls: type[Signer]) -> type[Signer]:
    SIGNERS[cls.name] = cls
    return cls


@register_signer
class Pkcs12Signer(Signer):
    """The seal key and certificate (and CA chain, if bundled) from a PKCS#12 file."""

    name = "pkcs12"

    def load(self, settings: Settings) -> SealIdentity:
        return SealIdentity.from_pkcs12(settings.seal_p12_file, settings.seal_p12_password)
