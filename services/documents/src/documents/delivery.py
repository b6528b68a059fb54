"""How a built package reaches the recipient's protocol.

Every package lands in the protocol inbox of this platform (the store is the inbox: the
protocol officer downloads the package and records the number). The backend chosen by
``DOCUMENTS_DELIVERY_BACKEND`` — ``pec`` by default when ``DOCUMENTS_PEC_SMTP_URL`` is set,
``inbox`` otherwise — decides what else happens:

* ``inbox``: nothing else; the package is delivered as soon as it is in the inbox.
* ``pec``: ``message.eml`` is sent, byte for byte as stored and hashed in the manifest, to the
  recipient AOO's PEC address through the PEC provider's SMTP server
  (``smtps://user:pass@host:465`` implicit TLS, ``smtp://user:pass@host:587?starttls=1``,
  ``smtp://host:2525`` plain for tests; ``?cafile=/path.pem`` trusts a private CA). The
  package is then *sent*; the provider's receipts (accettazione, avvenuta consegna) and the
  recipient's Conferma.xml move it on (see ``replies``).

A backend raises :class:`DeliveryRefused` for a failure that repeating cannot cure (the
message is over the recipient's size limit, the server refuses the recipient for good);
anything else it raises (``OSError``: the connection, ``smtplib.SMTPException``) is
transient and the task retries it with backoff. A connection lost once the message was
handed over (DATA) raises :class:`DeliveryUncertain`: the provider may have accepted it, so
the service waits for its receipt before sending again (see ``services.deliver_package``).
"""

from __future__ import annotations

import contextlib
import smtplib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ambito_common.mail import server_url
from sqlalchemy.orm import Session

from .builders import DEFAULT_PEC_LIMIT, MESSAGE_NAME
from .models import DELIVERED, SENT, Package
from .storage import PackageStore

if TYPE_CHECKING:
    from .settings import Settings


class DeliveryRefused(Exception):
    """The package cannot be delivered as it is; retrying would fail the same way."""


class DeliveryUncertain(OSError):
    """The conversation broke after the message was handed over: it may have been accepted."""


@dataclass(frozen=True)
class Delivery:
    """What happened: the package's new status and a line for its timeline."""

    status: str
    event: str
    detail: str


class DeliveryBackend:
    """Delivers one package.

    ``deliver`` is called only for a package not yet delivered. An ``external`` backend's
    send cannot be undone and may outlive a crash before the commit: the service records
    the attempt first and, finding one unresolved, waits for the provider's receipt rather
    than sending blindly again.
    """

    name: ClassVar[str]
    external: ClassVar[bool] = False

    def __init__(self, settings: Settings, store: PackageStore) -> None:
        self.settings = settings
        self.store = store

    def deliver(self, session: Session, package: Package) -> Delivery:
        raise NotImplementedError

    def permanent_refusal(self, package: Package) -> str | None:
        """Why this backend can never deliver ``package`` as built, or None.

        A package is immutable once sealed, so such a refusal holds for every later attempt:
        the page offers no "retry now" for it and the service refuses the retry.
        """
        return None


BACKENDS: dict[str, type[DeliveryBackend]] = {}


def register_backend(cls: type[DeliveryBackend]) -> type[DeliveryBackend]:
    BACKENDS[cls.name] = cls
    return cls


@register_backend
class InboxBackend(DeliveryBackend):
    """The protocol inbox: the package is already in our store, so delivering is marking it."""

    name = "inbox"

    def deliver(self, session: Session, package: Package) -> Delivery:
        return Delivery(DELIVERED, "delivered", "nella casella del protocollo della piattaforma")


@register_backend
class PecBackend(DeliveryBackend):
    """PEC over SMTP to the recipient AOO's PEC address (see module doc)."""

    name = "pec"
    external = True

    def deliver(self, session: Session, package: Package) -> Delivery:
        from .services import human_size

        refusal = self.permanent_refusal(package)
        if refusal:
            raise DeliveryRefused(refusal)
        message = self.store.path(package.id, MESSAGE_NAME).read_bytes()
        url = self.settings.pec_smtp_url
        if not url:
            raise DeliveryRefused("PEC non configurata (DOCUMENTS_PEC_SMTP_URL).")
        try:
            send_raw(url, self.settings.message_from, [package.recipient_pec], message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise DeliveryRefused(f"Il server PEC rifiuta il destinatario {package.recipient_pec}: "
                                      f"{exc.recipients}") from exc
            raise
        return Delivery(SENT, "sent", f"inviato via PEC a {package.recipient_pec} "
                                      f"({human_size(len(message))}, Message-ID {package.message_id})")

    def permanent_refusal(self, package: Package) -> str | None:
        """The message is over the recipient mailbox's size limit."""
        from .services import human_size

        size = self.store.path(package.id, MESSAGE_NAME).stat().st_size
        limit = package.size_limit or DEFAULT_PEC_LIMIT
        if size <= limit:
            return None
        return (f"Il messaggio PEC è di {human_size(size)} e supera il limite di {human_size(limit)} "
                "della casella del destinatario: il pacchetto non è stato inviato. Scaricarlo e "
                "trasmetterlo in più messaggi, o ridurre gli allegati.")


def send_raw(url: str, sender: str, recipients: list[str], message: bytes) -> None:
    """Send ``message`` unchanged (no re-serialisation: its hash is in the manifest)."""
    server = server_url(url, ("smtp", "smtps"), "PEC SMTP")
    smtp: smtplib.SMTP
    if server.implicit_tls:
        smtp = smtplib.SMTP_SSL(server.host, server.port or 465, timeout=60, context=server.context)
    else:
        smtp = smtplib.SMTP(server.host, server.port or 25, timeout=60)
    data = smtp.data
    handed_over = False

    def tracked_data(msg: bytes) -> tuple[int, bytes]:
        nonlocal handed_over
        handed_over = True
        return data(msg)

    smtp.data = tracked_data  # type: ignore[method-assign]  # smtplib.sendmail calls self.data
    try:
        if server.starttls:
            smtp.starttls(context=server.context)
        if server.username:
            smtp.login(server.username, server.password)
        try:
            smtp.sendmail(sender, recipients, message)
        except smtplib.SMTPDataError:
            raise  # the server answered the DATA: it did not take the message
        except OSError as exc:  # smtplib.SMTPException is an OSError
            if handed_over:
                raise DeliveryUncertain(
                    f"connessione interrotta dopo la trasmissione del messaggio: {exc}") from exc
            raise
    finally:
        # Once the message is accepted a failing QUIT changes nothing: never report it.
        with contextlib.suppress(OSError):
            smtp.quit()
        smtp.close()
