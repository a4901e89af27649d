"""Which runs a standby transfer actor can serve."""

from __future__ import annotations

import time
from types import SimpleNamespace

from syncmaster_ray.job.session import SessionShape, can_use_standby, run_shape
from syncmaster_ray.spec import Resources


def _settings(use_maven: bool) -> SimpleNamespace:
    return SimpleNamespace(spark=SimpleNamespace(use_maven_packages=use_maven))


def _handler(kind: str, packages: tuple[str, ...] = ("g:a:1",)) -> SimpleNamespace:
    return SimpleNamespace(connection_type=kind, maven_packages=packages, maven_exclusions=lambda: ())


def test_default_resources_without_hive_use_the_standby():
    shape = run_shape(_settings(False), Resources(), (_handler("postgres"), _handler("mysql")))
    assert shape == SessionShape(resources=Resources())  # packages count only when Maven resolves them
    assert can_use_standby(shape, SessionShape(resources=Resources()))


def test_other_resources_or_hive_start_their_own_session():
    standby = SessionShape(resources=Resources())
    bigger = run_shape(_settings(False), Resources(max_parallel_tasks=2), (_handler("postgres"), _handler("mysql")))
    hive = run_shape(_settings(False), Resources(), (_handler("postgres"), _handler("hive")))
    assert not can_use_standby(bigger, standby)
    assert not can_use_standby(hive, standby)


def test_with_maven_the_standby_must_carry_the_runs_packages():
    shape = run_shape(_settings(True), Resources(), (_handler("postgres", ("pg:1",)), _handler("mysql", ("my:1",))))
    assert shape.maven_packages == ("my:1", "pg:1")
    assert can_use_standby(shape, SessionShape(resources=Resources(), maven_packages=("my:1", "ora:1", "pg:1")))
    assert not can_use_standby(shape, SessionShape(resources=Resources(), maven_packages=("pg:1",)))


def test_a_claim_arriving_after_its_deadline_is_refused_and_the_standby_stays_free():
    """A standby still waiting for its placement answers a queued claim only once it starts; by then the claiming
    run has given up on it (its wait timed out) and gone on. Accepting it would leave the standby claimed by a run
    that never uses it, holding its capacity for good."""
    standby = _idle_standby()
    assert standby.claim(7, deadline=time.time() - 1) is None and standby.run_id is None
    assert standby.claim(8, deadline=time.time() + 60) == "its-group" and standby.run_id == 8
    assert standby.claim(9) is None  # taken


def test_an_evicted_standby_refuses_every_later_claim_and_a_claimed_one_cannot_be_evicted():
    evicted = _idle_standby()
    assert evicted.evict() == "its-group"
    assert evicted.evict() is None  # freed once
    assert evicted.claim(7) is None and evicted.run_id is None
    claimed = _idle_standby()
    assert claimed.claim(8) == "its-group"
    assert claimed.evict() is None and claimed.run_id == 8


def _idle_standby():
    """A standby whose Spark is never started (its warm-up thread does nothing)."""
    from unittest.mock import patch

    from syncmaster_ray.job.standby import StandbyActor

    with patch.object(StandbyActor, "_start_session"):
        return StandbyActor(SessionShape(resources=Resources()), "its-group", [0])


def test_a_claimed_standby_no_longer_counts_but_keeps_its_name():
    from syncmaster_ray.job.standby import free_names

    assert free_names(set(), None, 1) == ["standby-0", "standby-1"]
    assert free_names({"standby-0"}, None, 1) == []  # one idle standby: enough
    assert free_names({"standby-0"}, "standby-0", 1) == ["standby-1"]  # the run's own, claimed: replace it
    assert free_names({"standby-0", "standby-1"}, "standby-1", 1) == []  # its replacement is there already
    assert free_names({"standby-1"}, None, 2) == ["standby-0", "standby-2", "standby-3"]


def test_standbys_are_on_by_default_as_one_started_where_there_is_room():
    from syncmaster_ray.settings import RaySettings

    assert RaySettings().standby_drivers == "auto" and RaySettings().standbys_on
    assert RaySettings().standby_count == 1
    assert RaySettings(standby_drivers="3").standby_count == 3
    assert not RaySettings(standby_drivers="0").standbys_on
