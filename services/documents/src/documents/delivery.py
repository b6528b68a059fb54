"""How a built package reaches the recipient's protocol.

Each way of delivering is a small backend chosen by ``DOCUMENTS_DELIVERY_BACKEND``.
Today there is one, the protocol inbox of this platform, where the protocol
officer downloads the package and records the number; a PEC backend sending
``message.eml`` through a PEC provider plugs in beside it without touching the
pipeline.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy.orm import Session

from .models import Package


class DeliveryBackend:
    """Delivers one package; returns a line for the package's timeline.

    ``deliver`` must be safe to call again for the same package (tasks are
    at-least-once): the service only calls it for a package not yet delivered,
    but a crash after an external send and before the commit repeats it.
    """

    name: ClassVar[str]

    def deliver(self, session: Session, package: Package) -> str:
        raise NotImplementedError


BACKENDS: dict[str, type[DeliveryBackend]] = {}


def register_backend(cls: type[DeliveryBackend]) -> type[DeliveryBackend]:
    BACKENDS[cls.name] = cls
    return cls


@register_backend
class InboxBackend(DeliveryBackend):
    """The protocol inbox: the package is already in our store, so delivering is marking it."""

    name = "inbox"

    def deliver(self, session: Session, package: Package) -> str:
        return "nella casella del protocollo della piattaforma"
