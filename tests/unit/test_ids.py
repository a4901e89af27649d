"""``syncmaster_ray.ids``: deterministic submission ids and the names derived from them."""

from __future__ import annotations

import re

import pytest

from syncmaster_ray.ids import (
    actor_name_for,
    normalize_namespace,
    placement_group_name_for,
    run_id_of,
    submission_id_for,
)


def test_submission_id_is_deterministic():
    assert submission_id_for(42, "syncmaster") == submission_id_for(42, "syncmaster") == "syncmaster-syncmaster-run-42"


def test_submission_id_differs_per_run_and_namespace():
    ids = {submission_id_for(r, ns) for r in (1, 2, 11) for ns in ("a", "b")}
    assert len(ids) == 6


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("syncmaster", "syncmaster"),
        ("SyncMaster_Prod", "syncmaster-prod"),
        ("my db.name", "my-db-name"),
        ("__weird__$$name__", "weird-name"),
        ("a---b", "a-b"),
        ("", "default"),
        ("___", "default"),
        ("Ünïcode", "n-code"),
        ("x" * 60, "x" * 40),
    ],
)
def test_normalize_namespace(raw, expected):
    assert normalize_namespace(raw) == expected


def test_normalized_namespace_is_safe_and_bounded():
    for raw in ("A B C", "x" * 100, "team/α/β", "syncmaster_prod_2024"):
        ns = normalize_namespace(raw)
        assert re.fullmatch(r"[a-z0-9-]{1,40}", ns)
        assert not ns.startswith("-")


def test_submission_id_normalizes_namespace():
    assert submission_id_for(7, "SyncMaster_Prod") == "syncmaster-syncmaster-prod-run-7"
    assert submission_id_for(7, "") == "syncmaster-default-run-7"


@pytest.mark.parametrize("namespace", ["syncmaster", "Prod DB", "my-run-db", "run", "x" * 60, "", "a-run-1"])
@pytest.mark.parametrize("run_id", [0, 1, 42, 10**12])
def test_run_id_round_trip(namespace, run_id):
    assert run_id_of(submission_id_for(run_id, namespace)) == run_id


@pytest.mark.parametrize(
    "value",
    [
        "raysubmit_abc123",
        "syncmaster-prod-run-",
        "syncmaster-prod-run-x1",
        "syncmaster--run-1" + "x",
        "syncmaster-Prod-run-1",
        "prefix-syncmaster-prod-run-1",
        "syncmaster-prod-run-1-driver",
        "syncmaster-prod-run-1-pg",
        "",
    ],
)
def test_run_id_of_rejects_foreign_ids(value):
    assert run_id_of(value) is None


def test_actor_and_placement_group_names():
    sid = submission_id_for(42, "prod")
    assert actor_name_for(sid) == "syncmaster-prod-run-42-driver"
    assert placement_group_name_for(sid) == "syncmaster-prod-run-42-pg"
    assert actor_name_for(sid) != placement_group_name_for(sid)
    # The derived names are not mistaken for submission ids.
    assert run_id_of(actor_name_for(sid)) is None
    assert run_id_of(placement_group_name_for(sid)) is None
