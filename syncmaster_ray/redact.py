"""Scrub secrets from text before it is logged, stored as a reason or shown on the dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
_PASSWORD_PAIRS = re.compile(r"(?i)(?P<key>password|passwd|pwd|secret|token|secret_key|access_key)(?P<sep>\s*[=:]\s*)"
                             r"(?P<quote>['\"]?)(?P<value>[^'\"\s,;&)}]+)")
MASK = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords, ``password=...`` pairs and every literal secret given."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _PASSWORD_PAIRS.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", text)
