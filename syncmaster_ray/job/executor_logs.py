"""The end of each Spark executor's log, kept with its run.

RayDP's executors are Java actors. They log to ``raydp-java-worker-<job>-<pid>.log`` on their own node, not to the
Ray job's log, so the dashboard link and the job's log tail show an executor-side failure (a task's exception, a
JVM that ran out of memory) only as the driver's summary of it. At the end of a run the job finds the run's
executors by its placement group (Ray keeps the records of dead actors) and reads the last lines of each one's
file through Ray's state API, which reaches every node.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from syncmaster_ray.redact import redact

log = logging.getLogger(__name__)

EXECUTOR_CLASS_SUFFIX = "RayDPExecutor"
LOG_FILE = "raydp-java-worker-{job_id}-{pid}.log"  # RayDP's prefix for its Java workers' log files
TAIL_LINES = 150
CHARS_PER_EXECUTOR = 12_000
STATE_API_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class ExecutorLog:
    """The last lines of one executor's log file, secrets scrubbed."""

    name: str
    node_id: str
    pid: int
    text: str

    def render(self) -> str:
        return f"--- executor {self.name} (node {self.node_id[:12]}, pid {self.pid}) ---\n{self.text.rstrip()}\n"


def wanted(policy: str, *, failed: bool) -> bool:
    """Does ``SYNCMASTER__RAY__EXECUTOR_LOGS`` (``always``, ``failed`` or ``never``) keep this run's?"""
    return policy == "always" or (policy == "failed" and failed)


def collect(group_id: str, secrets: Iterable[str]) -> list[ExecutorLog]:
    """The log tail of every executor that ran in the placement group ``group_id`` (hex), by executor name."""
    from ray.util.state import list_actors

    actors = list_actors(
        filters=[("placement_group_id", "=", group_id)], detail=True, limit=1000,
        timeout=STATE_API_TIMEOUT_SECONDS, raise_on_missing_output=False,
    )
    executors = [actor for actor in actors if (actor.class_name or "").endswith(EXECUTOR_CLASS_SUFFIX)]
    secrets = tuple(secrets)
    return [_tail_of(actor, secrets) for actor in sorted(executors, key=lambda actor: actor.name or "")]


def _tail_of(actor: Any, secrets: tuple[str, ...]) -> ExecutorLog:
    from ray.util.state import get_log

    name = actor.name or actor.actor_id[:12]
    if not actor.pid or not actor.node_id:
        return ExecutorLog(name, actor.node_id or "?", actor.pid or 0, "(the executor never started a process)")
    filename = LOG_FILE.format(job_id=actor.job_id, pid=actor.pid)
    try:
        text = "".join(get_log(node_id=actor.node_id, filename=filename, tail=TAIL_LINES,
                               timeout=STATE_API_TIMEOUT_SECONDS))
    except Exception as exc:  # the node is gone, or the file with it
        text = f"(its log {filename} could not be read: {type(exc).__name__})"
    # Scrubbed before it is cut (a cut through a secret would leave a part no longer recognised), then cut at a line.
    text = redact(text, secrets)
    if len(text) > CHARS_PER_EXECUTOR:
        text = text[-CHARS_PER_EXECUTOR:].split("\n", 1)[-1]
    return ExecutorLog(name, actor.node_id, actor.pid, text)


def render(logs: Iterable[ExecutorLog]) -> str:
    return "".join(executor_log.render() for executor_log in logs)
