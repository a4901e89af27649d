"""Which runs keep their executors' logs, and how a kept one reads (``syncmaster_ray.job.executor_logs``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from syncmaster_ray.job.executor_logs import ExecutorLog, render, wanted


@pytest.mark.parametrize(("policy", "failed", "kept"), [
    ("always", False, True), ("always", True, True),
    ("failed", False, False), ("failed", True, True),
    ("never", False, False), ("never", True, False),
])
def test_the_setting_says_which_runs_keep_them(policy, failed, kept):
    assert wanted(policy, failed=failed) is kept


def test_each_executor_gets_a_header_naming_it_its_node_and_pid():
    text = render([
        ExecutorLog("raydp-executor-0", "a" * 56, 101, "line 1\nline 2\n"),
        ExecutorLog("raydp-executor-1", "b" * 56, 202, "only line"),
    ])

    assert text == (
        f"--- executor raydp-executor-0 (node {'a' * 12}, pid 101) ---\nline 1\nline 2\n"
        f"--- executor raydp-executor-1 (node {'b' * 12}, pid 202) ---\nonly line\n"
    )


def test_a_tail_is_scrubbed_of_secrets_and_bounded(monkeypatch):
    import ray.util.state

    from syncmaster_ray.job import executor_logs

    asked = {}

    def get_log(**kwargs):
        asked.update(kwargs)
        yield "x" * executor_logs.CHARS_PER_EXECUTOR
        yield "\nERROR jdbc:postgresql://etl:s3cret-pw@db/shop failed, token=abc123, key hunter2-key\n"

    monkeypatch.setattr(ray.util.state, "get_log", get_log)
    actor = SimpleNamespace(name="raydp-executor-0", actor_id="f" * 32, node_id="n" * 56, pid=42, job_id="03000000")

    found = executor_logs._tail_of(actor, ("hunter2-key",))

    assert asked["node_id"] == "n" * 56 and asked["filename"] == "raydp-java-worker-03000000-42.log"
    # Cut to its last characters, from the first whole line among them.
    assert found.text == "ERROR jdbc:postgresql://etl:***@db/shop failed, token=***, key ***\n"


def test_an_unreadable_log_says_so_without_its_error_text(monkeypatch):
    import ray.util.state

    from syncmaster_ray.job import executor_logs

    def get_log(**kwargs):
        raise RuntimeError("http://user:pw@head failed")

    monkeypatch.setattr(ray.util.state, "get_log", get_log)
    actor = SimpleNamespace(name=None, actor_id="f" * 32, node_id="n" * 56, pid=42, job_id="03000000")

    found = executor_logs._tail_of(actor, ())

    assert found.name == "f" * 12
    assert found.text == "(its log raydp-java-worker-03000000-42.log could not be read: RuntimeError)"
