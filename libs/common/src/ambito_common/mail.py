"""Outgoing e-mail, chosen by URL: ``file:///dir`` (embedded), ``smtp://`` or ``smtps://``.

``smtp://user:pass@host:587?starttls=1`` upgrades with STARTTLS; ``smtps://`` uses
implicit TLS. Embedded mode writes each message as an .eml file under var/mail/
so a person can open what would have been sent.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


def send_mail(url: str, message: EmailMessage) -> str:
    """Send ``message``; returns its Message-ID (added if missing)."""
    if "Message-ID" not in message:
        message["Message-ID"] = make_msgid(domain="ambito.invalid")
    parts = urlsplit(url)
    if parts.scheme == "file":
        folder = Path(unquote(parts.path))
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{uuid.uuid4().hex}.eml"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(message.as_bytes())
        tmp.replace(target)
    elif parts.scheme in ("smtp", "smtps"):
        options = parse_qs(parts.query)
        context = ssl.create_default_context()
        if options.get("insecure") == ["1"]:  # local test servers with self-signed certificates
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
        kwargs = {"context": context} if parts.scheme == "smtps" else {}
        with smtp_class(parts.hostname or "localhost", parts.port or 25, timeout=30,
                        **kwargs) as smtp:
            if options.get("starttls") == ["1"]:
                smtp.starttls(context=context)
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)
    else:
        raise ValueError(f"unsupported mail URL scheme: {parts.scheme!r}")
    return message["Message-ID"]
