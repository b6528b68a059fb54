"""The PEC mailbox poller: replies arriving by IMAP (receipts, Conferma.xml, Eccezione.xml).

``DOCUMENTS_PEC_IMAP_URL`` names the platform's PEC mailbox: ``imaps://user:pass@host:993/INBOX``
(implicit TLS), ``imap://user:pass@host:143/INBOX?starttls=1``; ``?cafile=/path.pem`` trusts a
private CA. Each unseen message is handed to the reply handler and marked seen once handled,
so a crash in between only means the next poll handles it again (which records nothing new:
replies are idempotent). A message that is not a reply (or names no package of ours) is also
marked seen: reading it again would not change the answer.
"""

from __future__ import annotations

import contextlib
import imaplib
from collections.abc import Callable

from ambito_common.mail import server_url

__all__ = ["poll_mailbox"]


def poll_mailbox(url: str, handle: Callable[[bytes], None]) -> int:
    """Hand every unseen message of the mailbox to ``handle``; returns how many were handled.

    An exception from ``handle`` stops the poll and leaves that message unseen for the next.
    """
    server = server_url(url, ("imap", "imaps"), "PEC IMAP")
    client: imaplib.IMAP4
    if server.implicit_tls:
        client = imaplib.IMAP4_SSL(server.host, server.port or 993, ssl_context=server.context, timeout=60)
    else:
        client = imaplib.IMAP4(server.host, server.port or 143, timeout=60)
        if server.starttls:
            client.starttls(ssl_context=server.context)
    try:
        client.login(server.username, server.password)
        client.select(server.path or "INBOX")
        _, found = client.uid("SEARCH", "UNSEEN")
        uids = found[0].split() if found and found[0] else []
        for uid in uids:
            _, fetched = client.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next(item[1] for item in fetched if isinstance(item, tuple))
            handle(raw)
            client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        return len(uids)
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()
