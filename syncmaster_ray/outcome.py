"""Turn any exception into the (code, reason) a run records: one line, specific, secret-free; and the outcome a
transfer actor and a job hand back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from syncmaster_ray.errors import ErrorCode, SyncmasterRayError
from syncmaster_ray.redact import redact

REASON_MAX_CHARS = 1000
_JAVA_OR_PY_ERROR = re.compile(r"(?:[\w$]+\.)*(?P<cls>[\w$]*(?:Exception|Error)): (?P<msg>.+)")
_SKIP = ("Py4JJavaError", "An error occurred while calling")
_PY_TRACEBACK = "Traceback (most recent call last):"


def short_error(exc: BaseException) -> str:
    """The most telling line of a (possibly Java) error: ``PSQLException: ERROR: relation "x" does not exist``.

    A Python task that failed on an executor reaches the driver as a Java error whose line ends in ``Traceback
    (most recent call last):``; the Python error itself is the traceback's last line, which is added.
    """
    text = str(exc) or type(exc).__name__
    lines = text.splitlines()
    for number, raw in enumerate(lines):
        line = raw.strip().lstrip(": ").strip()
        if not line or line.startswith("at ") or any(skip in line for skip in _SKIP):
            continue
        match = _JAVA_OR_PY_ERROR.match(line)
        if match:
            found = f"{match['cls']}: {match['msg']}"
            if found.endswith(_PY_TRACEBACK) and (python_error := _python_error(lines[number + 1:])):
                found = f"{found.removesuffix(_PY_TRACEBACK).rstrip()} {python_error}"
            return found
    first = next((line.strip() for line in lines if line.strip()), text)
    return f"{type(exc).__name__}: {first}"


def _python_error(traceback: list[str]) -> str | None:
    """The error a Python traceback ends with (``SourceError: ...``): its last unindented error line before the
    Java stack (``at ...``) goes on."""
    found = None
    for raw in traceback:
        if raw.strip().startswith("at "):
            break
        match = None if raw[:1].isspace() else _JAVA_OR_PY_ERROR.match(raw.strip())
        if match:
            found = f"{match['cls']}: {match['msg']}"
    return found


def error_with_cause(exc: BaseException) -> str:
    """``RuntimeError: Connection is unavailable (PermanentError: 530 Authentication failed.)``: the error and the
    innermost error that caused it."""
    root = exc
    seen = {id(root)}
    while (nested := root.__cause__ or root.__context__) is not None and id(nested) not in seen:
        seen.add(id(nested))
        root = nested
    text = short_error(exc)
    return text if root is exc else f"{text} ({short_error(root)})"


def classify(exc: BaseException, secrets: Iterable[str] = ()) -> tuple[ErrorCode, str]:
    """``(code, reason)`` for the run record. Our errors keep their code; anything else is ``internal``."""
    if isinstance(exc, SyncmasterRayError):
        code, reason = exc.code, exc.reason
    else:
        code, reason = ErrorCode.INTERNAL, f"unexpected error: {short_error(exc)}"
    return code, redact(" ".join(reason.split()), secrets)[:REASON_MAX_CHARS]


@dataclass
class RunOutcome:
    """How a run's transfer ended, as the transfer actor returns it to its job: ``metrics`` on success, else
    ``code`` and ``reason``. ``log``: a claimed standby's log lines, which its run's job prints."""

    metrics: dict[str, Any] = field(default_factory=dict)
    code: ErrorCode | None = None
    reason: str | None = None
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is None

    @classmethod
    def failed(cls, exc: BaseException, secrets: Iterable[str] = ()) -> RunOutcome:
        code, reason = classify(exc, secrets)
        return cls(code=code, reason=reason)
