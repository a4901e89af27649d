"""Scrub secrets from text before it is logged, stored as a reason or shown on the dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterable

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]*)@")
# key, an optional closing quote (dicts, JSON), = or :, then a quoted value (spaces allowed) or a bare one.
_PASSWORD_PAIRS = re.compile(
    r"(?i)(?P<key>\w*(?:password|passwd|pwd|secret|token|access_key)\w*)(?P<keyquote>['\"]?)(?P<sep>\s*[=:]\s*)"
    r"(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\"|(?P<bare>[^'\"\s,;&)}]+))"
)
MASK = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords, ``password=...`` pairs and every literal secret given."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _PASSWORD_PAIRS.sub(_mask_pair, text)


def _mask_pair(match: re.Match[str]) -> str:
    head = f"{match['key']}{match['keyquote']}{match['sep']}"
    if match["single"] is not None:
        return f"{head}'{MASK}'"
    if match["double"] is not None:
        return f'{head}"{MASK}"'
    return f"{head}{MASK}"
