"""What ``syncmaster-ray status`` shows: the cluster's capacity, runs waiting for it, runs executing, recent failures.

Capacity comes from Ray's state API over HTTP (``ray.util.state``'s client on the dashboard address the worker uses,
no Ray driver): node totals, minus the bundles of the placement groups that hold resources now. Runs come from
SyncMaster's run table and ours.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from syncmaster_ray.errors import Phase
from syncmaster_ray.queue_order import STALE_SECONDS, positions
from syncmaster_ray.ray_client import dashboard_auth_headers
from syncmaster_ray.redact import redact

RESOURCE_KEYS = ("CPU", "memory")
STANDBY_PREFIX = "standby-"  # job/standby.py's PREFIX (not imported: this module stays free of the job package)


@dataclass
class Capacity:
    nodes: int = 0
    total: dict[str, float] = field(default_factory=dict)
    reserved: dict[str, float] = field(default_factory=dict)
    groups_waiting: int = 0
    standbys: int = 0  # placed groups of standby transfer actors (idle, or claimed by a run)
    error: str | None = None

    @property
    def free(self) -> dict[str, float]:
        return {key: self.total.get(key, 0) - self.reserved.get(key, 0) for key in RESOURCE_KEYS}


@dataclass
class RunLine:
    run_id: int
    transfer: str
    status: str
    phase: str | None
    started_at: datetime | None
    ended_at: datetime | None
    log_url: str | None
    error_code: str | None = None
    reason: str | None = None
    progress: dict[str, Any] | None = None  # the copy's last sample (job/progress.py), while it runs
    queue_place: int | None = None  # waiting for capacity: its place in the cluster's queue, from 1
    priority: int | None = None  # ... and its slug's priority there


def progress_text(progress: dict[str, Any]) -> str:
    """``1,234,000 rows in 12 s (98,000 rows/s), 41% of about 3,000,000, about 18 s to go``."""
    text = (f"{progress.get('rows', 0):,} rows in {progress.get('seconds', 0):.0f} s "
            f"({progress.get('rows_per_second', 0):,} rows/s)")
    if progress.get("percent") is not None:
        text += f", {progress['percent']:g}% of about {progress['total_estimate']:,}"
    if progress.get("eta_seconds") is not None:
        text += f", about {progress['eta_seconds']:.0f} s to go"
    return text


@dataclass
class StatusReport:
    capacity: Capacity
    waiting: list[RunLine]
    executing: list[RunLine]
    failures: list[RunLine]

    def as_json(self) -> str:
        return json.dumps(asdict(self) | {"free": self.capacity.free}, default=str, indent=2)


def capacity_from(nodes: list[dict[str, Any]], groups: list[dict[str, Any]]) -> Capacity:
    """Pure maths over the state API's node and placement-group records."""
    capacity = Capacity()
    for node in nodes:
        if node.get("state") != "ALIVE":
            continue
        capacity.nodes += 1
        for key in RESOURCE_KEYS:
            capacity.total[key] = capacity.total.get(key, 0) + (node.get("resources_total") or {}).get(key, 0)
    for group in groups:
        if group.get("state") == "CREATED":
            capacity.standbys += f"/{STANDBY_PREFIX}" in str(group.get("name") or "")
            for bundle in group.get("bundles") or []:
                for key in RESOURCE_KEYS:
                    capacity.reserved[key] = capacity.reserved.get(key, 0) + bundle["unit_resources"].get(key, 0)
        elif group.get("state") in ("PENDING", "RESCHEDULING"):
            capacity.groups_waiting += 1
    return capacity


def fetch_capacity(dashboard_url: str, timeout: float = 10) -> Capacity:
    try:
        client = _state_client(dashboard_url)
        nodes = _records(client, "nodes", timeout)
        groups = _records(client, "placement_groups", timeout)
    except Exception as exc:  # the cluster may be down: the database part of the report still stands
        status = _http_status(exc)
        if status is None:
            return Capacity(error=f"the Ray cluster at {redact(dashboard_url)} did not answer: {type(exc).__name__}")
        hint = (" (token authentication: set RAY_AUTH_MODE=token and the cluster's token, RAY_AUTH_TOKEN or "
                "RAY_AUTH_TOKEN_PATH)" if status in (401, 403) else "")
        return Capacity(error=f"the Ray cluster at {redact(dashboard_url)} answered HTTP {status}{hint}")
    return capacity_from(nodes, groups)


def _state_client(dashboard_url: str) -> Any:
    """Ray's state API client for the dashboard. Our token header is passed explicitly: Ray's client adds its own
    only when Ray's auth mode was on when the process first asked (it caches it), and ours agrees with it
    (tests/unit/test_ray_auth.py)."""
    from ray.util.state import StateApiClient

    return StateApiClient(address=dashboard_url.rstrip("/"), headers=dashboard_auth_headers() or None)


def _records(client: Any, resource: str, timeout: float) -> list[dict[str, Any]]:
    """Every record of ``resource`` (detailed), as dicts."""
    from ray.util.state.common import ListApiOptions, StateResource

    records = client.list(StateResource(resource), ListApiOptions(limit=10_000, timeout=int(timeout), detail=True),
                          raise_on_missing_output=False)
    return [dataclasses.asdict(record) for record in records]


def _http_status(exc: Exception) -> int | None:
    """The HTTP status a state API request was refused with, else None. Ray's client raises ``AuthenticationError``
    for 401 ("Authentication required") and 403 ("Authentication failed"), and ``RayStateApiException`` naming the
    response's ``status=N`` for other refusals."""
    from ray.exceptions import AuthenticationError
    from ray.util.state.exception import RayStateApiException

    if isinstance(exc, AuthenticationError):
        return 401 if str(exc).startswith("Authentication required") else 403
    if isinstance(exc, RayStateApiException) and (found := re.search(r"\bstatus=(\d{3})\b", str(exc))):
        return int(found[1])
    return None


def gather(repo: Any, dashboard_url: str, failures: int, priorities: Mapping[str, int] | None = None
           ) -> StatusReport:
    """The report; the runs waiting for capacity in their queue's order (``queue_order``)."""
    active = repo.active_runs()
    places = positions(repo.capacity_queue(STALE_SECONDS), priorities or {})
    waiting = [dataclasses.replace(line, queue_place=places[line.run_id][0], priority=places[line.run_id][1])
               if line.run_id in places else line for line in active if line.phase == Phase.WAITING_FOR_CAPACITY]
    waiting.sort(key=lambda line: (line.queue_place is None, line.queue_place or 0, line.run_id))
    return StatusReport(
        capacity=fetch_capacity(dashboard_url),
        waiting=waiting,
        executing=[line for line in active if line.phase != Phase.WAITING_FOR_CAPACITY],
        failures=repo.recent_failures(failures),
    )
