"""``syncmaster_ray.handlers`` stays below the job: what its modules import, read from their source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "syncmaster_ray" / "handlers"
FORBIDDEN = ("syncmaster_ray.job", "syncmaster_ray.worker", "syncmaster_ray.db")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path) -> set[str]:
    """Every module the file imports, anywhere in it (``TYPE_CHECKING`` blocks and function bodies included);
    ``from package import module`` counts as the module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_handlers_do_not_reach_into_the_job_worker_or_database(name):
    assert not [module for module in imported(MODULES[name]) if module.startswith(FORBIDDEN)]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_handlers_take_settings_from_their_context(name):
    tree = ast.parse(MODULES[name].read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", getattr(node.func, "attr", None)) == "get_settings"]
    assert calls == []


def test_no_import_cycle_among_handler_modules():
    graph = {name: {module for module in imported(path) if module in MODULES and module != name}
             for name, path in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, " -> ".join((*trail[trail.index(name):], name))
        if name in done:
            return
        for module in graph[name]:
            visit(module, (*trail, name))
        done.add(name)

    for name in graph:
        visit(name, ())
