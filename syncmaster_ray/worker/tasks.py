"""``run_transfer_task(run_id=N)``: SyncMaster's task name and signature.

The task only takes the run and hands it to this worker's ``RunPool``, so the message is acknowledged at once
whatever the run's length; the run is then watched by a thread of the pool until it ends.
"""

from __future__ import annotations

import logging
import uuid

from syncmaster_ray.worker.app import app
from syncmaster_ray.worker.signals import run_pool
from syncmaster_ray.worker.supervisor import RunSupervisor, current_worker_id

log = logging.getLogger(__name__)
CORRELATION_ID_HEADER = "CORRELATION_ID"


@app.task(name="run_transfer_task", bind=True)
def run_transfer_task(self, run_id: int) -> str:
    """Claim the run (or take over one whose worker is gone) and start supervising it; returns at once."""
    correlation_id = self.request.get(CORRELATION_ID_HEADER) or uuid.uuid4().hex
    supervisor = RunSupervisor.from_settings(current_worker_id())
    taken = supervisor.take(run_id, correlation_id=correlation_id)
    if taken is None:
        return "skipped"
    run_pool().start(supervisor, taken)
    return "taken over" if taken.took_over else "claimed"
