"""The mutation check (``python -m tests.mutations``) stays runnable as the code moves: each edit still finds its
text exactly once, and each test it names still exists."""

from __future__ import annotations

import ast

import pytest

from tests.mutations import MUTATIONS, ROOT


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda mutation: mutation.name)
def test_mutation_finds_its_code_and_its_tests(mutation):
    assert (ROOT / mutation.path).read_text().count(mutation.old) == 1, f"{mutation.path} must hold the old text once"
    for test in mutation.tests:
        path, _, name = test.partition("::")
        tree = ast.parse((ROOT / path).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert not name or name.split("[")[0] in defined, f"{test} is not a test of {path}"
