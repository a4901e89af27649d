"""``run_transfer_task(run_id=N)``: SyncMaster's task name and signature, executed as a supervised Ray job."""

from __future__ import annotations

import logging
import uuid

from syncmaster_ray.worker.app import app
from syncmaster_ray.worker.supervisor import RunSupervisor

log = logging.getLogger(__name__)
CORRELATION_ID_HEADER = "CORRELATION_ID"


@app.task(name="run_transfer_task", bind=True, track_started=True)
def run_transfer_task(self, run_id: int) -> str:
    """Claim the run, submit its Ray job, wait for it and write the outcome back to SyncMaster's tables."""
    correlation_id = self.request.get(CORRELATION_ID_HEADER) or uuid.uuid4().hex
    return RunSupervisor.from_settings().supervise(run_id, correlation_id=correlation_id)
