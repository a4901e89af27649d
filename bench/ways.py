"""One way of running transfers (our worker, or SyncMaster's own), driven through the real server's REST API as
users drive it: ``POST /v1/runs``, then ``GET /v1/runs/{id}`` until the run ended."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from bench.cpu import Span
from bench.memory import MiB, PeakSampler, rss, tree
from bench.pipeline import phases_of


@dataclass
class Way:
    """``transfers``: this way's transfer ids by bench name; ``processes``: label -> pid of a process tree whose
    memory is sampled (its peak, and its peak above what it held before the runs); ``repo``: our run records
    (ours only), for the phases of a run."""

    name: str
    client: Any
    transfers: dict[str, int]
    processes: dict[str, int]
    repo: Any = None
    background: float = 0.0
    poll_seconds: float = 0.2
    timeout: float = 3600

    def run(self, transfer: str) -> dict[str, Any]:
        """One run: wall and busy CPU from POST to its end, memory, and (ours) its phases."""
        return self.burst([transfer])[0]

    def burst(self, transfers: list[str]) -> list[dict[str, Any]]:
        """Runs posted at once; one result per run, each with the span of the whole burst."""
        idle = {label: rss(tree(pid)) for label, pid in self.processes.items()}
        with ExitStack() as stack:
            samplers = {label: stack.enter_context(PeakSampler(lambda pid=pid: rss(tree(pid))))
                        for label, pid in self.processes.items()}
            span, sent_at = Span(self.background).start(), time.time()
            run_ids = [self.client.create_run(self.transfers[name])["id"] for name in transfers]
            ended = [self._wait(run_id) for run_id in run_ids]
            span.stop()
        memory = {f"{label}_peak_mib": round(sampler.peak / MiB) for label, sampler in samplers.items()}
        memory |= {f"{label}_above_idle_mib": round((sampler.peak - idle[label]) / MiB)
                   for label, sampler in samplers.items()}
        return [self._result(run, sent_at, span, memory) for run in ended]

    def _wait(self, run_id: int) -> dict[str, Any]:
        try:
            run = self.client.wait_run(run_id, timeout=self.timeout, interval=self.poll_seconds)
        except TimeoutError:
            raise SystemExit(f"{self.name}: run {run_id} did not end within {self.timeout:.0f} s") from None
        if run["status"] != "FINISHED":
            raise SystemExit(f"{self.name}: run {run_id} ended {run['status']}{self._reason(run_id)}")
        return run

    def _reason(self, run_id: int) -> str:
        record = self.repo.get_record(run_id) if self.repo is not None else None
        return f": {record.reason}" if record is not None else " (see the stock worker's log)"

    def _result(self, run: dict[str, Any], sent_at: float, span: Span, memory: dict[str, int]) -> dict[str, Any]:
        result: dict[str, Any] = {"run_id": run["id"], "wall": round(span.wall, 3), "cpu": round(span.cpu, 3),
                                  **memory}
        if self.repo is not None:
            metrics = self.repo.get_record(run["id"]).metrics or {}
            result["driver"] = metrics.get("driver", "?")
            result["phases"] = {key: round(value, 3) for key, value in
                                phases_of(sent_at, self.repo.get_run(run["id"]), metrics).items()}
        return result
