"""Which failures get another attempt, the delays, the reason listing every attempt, and attempts' job ids."""

from __future__ import annotations

import pytest

from syncmaster_ray.attempts import FailedAttempt, delay_before, is_safe_to_repeat, is_transient, listed
from syncmaster_ray.ids import attempt_of, is_submission_of, run_id_of, submission_id_for


@pytest.mark.parametrize(("code", "reason"), [
    ("actor_died", "the transfer actor (the Spark driver) died mid-run"),
    ("job_lost", "the Ray job is gone (was the Ray head restarted?)"),
    ("submit", "the Ray Jobs API refused the job: 503"),
    ("source", 'PSQLException: Connection to 10.0.0.5:5432 refused. Check that the hostname and port are correct'),
    ("target", "SQLNonTransientConnectionException: Communications link failure"),
    ("source", "PSQLException: FATAL: terminating connection due to administrator command"),
    ("target", "IOException: Broken pipe"),
])
def test_transient_failures(code, reason):
    assert is_transient(code, reason)


@pytest.mark.parametrize(("code", "reason"), [
    ("source", 'PSQLException: ERROR: relation "public.nope" does not exist'),
    ("credentials", "connection 3 auth_data cannot be decrypted with our key"),
    ("source", 'connection to server at "db" (10.0.0.5), port 5432 failed: FATAL: password authentication failed'),
    ("source", "SQLInvalidAuthorizationSpecException: Access denied for user 'x' (connection refused by policy)"),
    ("invalid_params", "source_params: connection refused is not a table name"),
    ("forbidden_sql", "the query reads pg_catalog"),
    ("timed_out", "the run was still going after 60 s"),
    ("resources_unavailable", "no capacity for 4 CPU within 3600 s"),
    ("stopped", "stopped on request"),
])
def test_permanent_failures(code, reason):
    assert not is_transient(code, reason)


def test_another_attempt_is_safe_only_without_a_possible_partial_write():
    assert is_safe_to_repeat("actor_died", repeatable=True)
    assert is_safe_to_repeat("actor_died", repeatable=None)  # the job never got as far as its handlers
    assert is_safe_to_repeat("source", repeatable=False)  # reading failed: nothing written
    assert not is_safe_to_repeat("actor_died", repeatable=False)
    assert not is_safe_to_repeat("target", repeatable=False)


def test_delays_repeat_the_last_one():
    assert [delay_before(attempt, [10, 60]) for attempt in (2, 3, 4)] == [10, 60, 60]
    assert delay_before(2, []) == 0


def test_the_reason_lists_every_attempt_each_cut_short():
    text = listed([FailedAttempt(1, "s", "actor_died", "x" * 1000)], FailedAttempt(2, "s-attempt-2", "source", "y"))
    first, second = text.split("; ")
    assert first.startswith("attempt 1: [actor_died] xxx") and first.endswith("...") and len(first) < 330
    assert second == "attempt 2: [source] y"


def test_each_attempt_has_a_job_id_of_its_own_that_names_its_run():
    first, third = submission_id_for(7, "SyncMaster"), submission_id_for(7, "SyncMaster", 3)
    assert (first, third) == ("syncmaster-syncmaster-run-7", "syncmaster-syncmaster-run-7-attempt-3")
    assert (run_id_of(third), attempt_of(third), attempt_of(first)) == (7, 3, 1)
    assert is_submission_of(third, 7, "SyncMaster") and not is_submission_of(third, 8, "SyncMaster")
    assert not is_submission_of("syncmaster-other-run-7-attempt-3", 7, "SyncMaster")
