"""The README and docs/ stay short and true to the code: links, paths, tests and settings they name exist."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from syncmaster_ray.settings import AppSettings
from syncmaster_ray_dev import settings_doc

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MADE_BY_RUNS = {"bench/results/"}  # where the bench writes its JSON, made by its first run
LONGEST_LINE = 400


def hand_written(page: Path) -> str:
    text = page.read_text()
    if page == settings_doc.DOC:
        head, _, tail = settings_doc.split(text)
        return head + tail
    return text


def setting_names() -> set[str]:
    names = set()
    for section, info in AppSettings.model_fields.items():
        model = next(a for a in typing.get_args(info.annotation) or (info.annotation,)
                     if isinstance(a, type) and issubclass(a, BaseModel))
        names |= {f"SYNCMASTER__{section}__{name}".upper() for name in model.model_fields}
    return names


def test_readme_is_short_and_shows_the_two_commands():
    text = README.read_text()
    assert len(text.encode()) < 12_000
    assert "./dev demo\n./dev test\n" in text
    script = (REPO / "dev").read_text()
    assert "  demo)\n" in script and "  test)\n" in script


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_overlong_lines(page):
    long = [line[:60] for line in hand_written(page).splitlines() if len(line) > LONGEST_LINE]
    assert not long, f"{page.name}: lines over {LONGEST_LINE} characters: {long}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_paths_exist(page):
    text = hand_written(page)
    missing = []
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if target.startswith("http"):
            continue
        resolved = (page.parent / target).resolve()
        if not resolved.exists():
            missing.append(target)
    for path in re.findall(r"`((?:cluster|tests|syncmaster_ray|syncmaster_ray_dev|docs|bench|\.ci)/[\w./-]+)", text):
        path = path.split("::")[0]
        if not (REPO / path).exists() and path not in MADE_BY_RUNS:
            missing.append(path)
    assert not missing, f"{page.name} names what does not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_tests_exist(page):
    text = hand_written(page)
    test_files = sorted((REPO / "tests").rglob("test_*.py"))
    every_test = "\n".join(path.read_text() for path in test_files)
    names = {path.name for path in test_files}
    missing = [name for name in re.findall(r"`(?:[\w/]+/)?(test_\w+\.py)", text) if name not in names]
    missing += [name for name in re.findall(r"::(test_\w+)", text) if f"def {name}(" not in every_test]
    assert not missing, f"{page.name} names tests that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_settings_exist(page):
    known = setting_names()
    named = set(re.findall(r"SYNCMASTER__[A-Z_]+[A-Z]", hand_written(page)))
    full = {name for name in named if name.count("__") == 2}
    assert full <= known, f"{page.name} names settings that do not exist: {sorted(full - known)}"
