"""The run's ``log_url``: SyncMaster's Jinja2 template, or by default the Ray dashboard job page."""

from __future__ import annotations

import logging
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

log = logging.getLogger(__name__)

LOG_URL_MAX_LENGTH = 512  # run.log_url is varchar(512)


def ray_job_url(dashboard_url: str, submission_id: str) -> str:
    return f"{dashboard_url.rstrip('/')}/#/jobs/{submission_id}"


class _AnyValue:
    """A stand-in run for checking a template: any attribute, item or call gives another one; it prints as 1."""

    def __getattr__(self, name: str) -> _AnyValue:
        if name.startswith("__"):
            raise AttributeError(name)
        return _AnyValue()

    def __getitem__(self, key: object) -> _AnyValue:
        return _AnyValue()

    def __call__(self, *args: object, **kwargs: object) -> _AnyValue:
        return _AnyValue()

    def __str__(self) -> str:
        return "1"


_SAMPLE_RUN = _AnyValue()


def check_template(template: str) -> None:
    """Raise ValueError when ``template`` does not compile or render with sample values (the message names it)."""
    if not template:
        return
    try:
        _render(template, run=_SAMPLE_RUN, correlation_id="c", submission_id="syncmaster-x-run-1",
                dashboard="http://ray:8265")
    except Exception as exc:
        raise ValueError(f"does not render: {type(exc).__name__}: {exc}") from None


def _render(template: str, *, run: Any, correlation_id: str, submission_id: str, dashboard: str) -> str:
    return SandboxedEnvironment().from_string(template).render(
        run=run, correlation_id=correlation_id, ray_job_id=submission_id, dashboard_url=dashboard,
        ray_job_url=ray_job_url(dashboard, submission_id),
    )


def render_log_url(template: str, dashboard: str, *, run: Any, correlation_id: str, submission_id: str) -> str:
    """Render ``template`` (``SYNCMASTER__WORKER__LOG_URL_TEMPLATE``) with SyncMaster's variables (``run``,
    ``correlation_id``) plus ours; ``dashboard``: the Ray dashboard's public URL.

    With no template, the dashboard job page, carrying ``correlation_id`` and ``run_id`` as SyncMaster's own
    tests expect them in every log URL.
    """
    job_url = ray_job_url(dashboard, submission_id)
    url = f"{job_url}?correlation_id={correlation_id}&run_id={run.id}"
    if template:
        try:
            url = _render(template, run=run, correlation_id=correlation_id, submission_id=submission_id,
                          dashboard=dashboard)
        except Exception as exc:  # checked when settings load; a run's own values can still break it
            log.warning("SYNCMASTER__WORKER__LOG_URL_TEMPLATE did not render for run %s (%s): the dashboard link "
                        "is used", run.id, type(exc).__name__)
    return url[:LOG_URL_MAX_LENGTH]
