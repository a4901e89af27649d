"""The run's ``log_url``: SyncMaster's Jinja2 template, or by default the Ray dashboard job page."""

from __future__ import annotations

from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from syncmaster_ray.settings import AppSettings

LOG_URL_MAX_LENGTH = 512  # run.log_url is varchar(512)


def ray_job_url(dashboard_url: str, submission_id: str) -> str:
    return f"{dashboard_url.rstrip('/')}/#/jobs/{submission_id}"


def render_log_url(settings: AppSettings, *, run: Any, correlation_id: str, submission_id: str) -> str:
    """Render ``worker.log_url_template`` with SyncMaster's variables (``run``, ``correlation_id``) plus ours.

    With no template, the dashboard job page, carrying ``correlation_id`` and ``run_id`` as SyncMaster's own
    tests expect them in every log URL.
    """
    dashboard = settings.ray.public_dashboard_url
    job_url = ray_job_url(dashboard, submission_id)
    template = settings.worker.log_url_template
    if not template:
        url = f"{job_url}?correlation_id={correlation_id}&run_id={run.id}"
    else:
        url = SandboxedEnvironment().from_string(template).render(
            run=run,
            correlation_id=correlation_id,
            ray_job_id=submission_id,
            dashboard_url=dashboard,
            ray_job_url=job_url,
        )
    return url[:LOG_URL_MAX_LENGTH]
