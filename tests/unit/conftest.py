"""Unit-test isolation: no ``SYNCMASTER__*`` variable or cached settings leaks into or out of a test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from syncmaster_ray.settings import ENV_FILE_VARIABLE, get_settings


@pytest.fixture(autouse=True)
def _clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("SYNCMASTER__") or name == ENV_FILE_VARIABLE:
            monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
