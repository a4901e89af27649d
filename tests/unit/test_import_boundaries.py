"""The Celery worker, the Ray client and the CLI must never load Spark, Py4J, RayDP or onETL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syncmaster_ray.settings import ENV_FILE_VARIABLE

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("pyspark", "py4j", "raydp", "onetl")
MODULES = ("syncmaster_ray.worker", "syncmaster_ray.worker.tasks", "syncmaster_ray.ray_client", "syncmaster_ray.cli")

PROBE = """
import importlib, json, sys
forbidden = {forbidden!r}
report = {{}}
for name in {modules!r}:
    importlib.import_module(name)
    report[name] = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def loaded_after_import() -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SYNCMASTER__") and k != ENV_FILE_VARIABLE}
    env["SYNCMASTER__DATABASE__URL"] = "postgresql+asyncpg://u:p@127.0.0.1:1/boundaries"
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN, modules=MODULES)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", MODULES)
def test_module_does_not_load_spark(loaded_after_import, module):
    # Modules are imported in order, so a module's entry also covers everything imported before it.
    assert module in loaded_after_import
    assert loaded_after_import[module] == [], f"importing {module} loaded {loaded_after_import[module]}"


def test_probe_detects_a_forbidden_import():
    # Guard against a probe that can never fail: importing the Spark side does show up.
    code = PROBE.format(forbidden=("syncmaster_ray",), modules=("syncmaster_ray.ids",))
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert "syncmaster_ray.ids" in json.loads(out)["syncmaster_ray.ids"]


def _package_imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere (module level, in functions, under TYPE_CHECKING)."""
    import ast

    package = REPO_ROOT / "syncmaster_ray"
    modules = {".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__"): path
               for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                             for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        graph[name] = {module for module in imported if module in modules and module != name}
    return graph


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    path: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(graph[module]):
            if cycle := visit(imported):
                return cycle
        path.pop()
        done.add(module)
        return None

    return visit(start)


def test_no_module_of_the_package_imports_itself_back():
    graph = _package_imports()
    cycles = [cycle for module in sorted(graph) if (cycle := _cycle_from(module, graph))]
    assert not cycles, f"import circle: {' -> '.join(cycles[0])}"


def test_the_cycle_check_finds_a_circle():
    assert _cycle_from("a", {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
