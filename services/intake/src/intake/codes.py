"""Tracking codes: the one secret an applicant holds to follow an application without an account."""

from __future__ import annotations

import secrets

# Crockford's base32: no I, L, O, U, so a code read over the phone is not misheard.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 20  # 20 x 5 = 100 random bits: unguessable, so knowing it is enough to read the status
_READ_AS = str.maketrans("OIL", "011")


def new_tracking_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise_tracking_code(text: str) -> str | None:
    """The canonical code from what a person typed (groups, lower case, O for 0); None if malformed."""
    code = "".join(text.split()).replace("-", "").upper().translate(_READ_AS)
    if len(code) != LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def group_tracking_code(code: str) -> str:
    """``ABCD-EFGH-...``: how a code is shown and read aloud."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))
