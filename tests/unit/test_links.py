"""``syncmaster_ray.links``: the run's log_url, default and templated, capped and sandboxed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jinja2.exceptions import SecurityError
from pydantic import ValidationError

from syncmaster_ray.links import LOG_URL_MAX_LENGTH, ray_job_url, render_log_url
from syncmaster_ray.settings import AppSettings

SUBMISSION_ID = "syncmaster-prod-run-42"
CORRELATION_ID = "0f3c9a1e2b7d4c55"


def make_settings(template: str = "", *, address: str = "http://ray-head:8265", dashboard: str | None = None):
    return AppSettings(
        database={"url": "postgresql+asyncpg://u:p@db:5432/prod"},
        ray={"address": address, "dashboard_url": dashboard},
        worker={"log_url_template": template},
    )


def make_run(run_id: int = 42, transfer_name: str = "daily orders"):
    return SimpleNamespace(id=run_id, transfer=SimpleNamespace(name=transfer_name, id=7, group_id=3))


def render(settings: AppSettings, run=None) -> str:
    return render_log_url(settings.worker.log_url_template, settings.ray.public_dashboard_url, run=run or make_run(),
                          correlation_id=CORRELATION_ID, submission_id=SUBMISSION_ID)


def test_ray_job_url_strips_trailing_slash():
    assert ray_job_url("https://ray.example.com/", "abc") == "https://ray.example.com/#/jobs/abc"
    assert ray_job_url("https://ray.example.com", "abc") == "https://ray.example.com/#/jobs/abc"


def test_default_log_url_is_dashboard_job_page_with_ids():
    url = render(make_settings())
    assert url == f"http://ray-head:8265/#/jobs/{SUBMISSION_ID}?correlation_id={CORRELATION_ID}&run_id=42"


def test_default_log_url_uses_public_dashboard_url():
    url = render(make_settings(dashboard="https://ray.example.com/"))
    assert url == f"https://ray.example.com/#/jobs/{SUBMISSION_ID}?correlation_id={CORRELATION_ID}&run_id=42"


def test_default_log_url_with_trailing_slash_address():
    url = render(make_settings(address="http://ray-head:8265/"))
    assert url.startswith(f"http://ray-head:8265/#/jobs/{SUBMISSION_ID}?")


def test_template_gets_syncmaster_variables():
    template = (
        "https://logs.example.com/search?run={{ run.id }}&transfer={{ run.transfer.name }}&cid={{ correlation_id }}"
    )
    url = render(make_settings(template), make_run(run_id=5, transfer_name="orders"))
    assert url == f"https://logs.example.com/search?run=5&transfer=orders&cid={CORRELATION_ID}"


def test_template_gets_our_variables():
    template = "{{ dashboard_url }}|{{ ray_job_id }}|{{ ray_job_url }}"
    url = render(make_settings(template, dashboard="https://ray.example.com/"))
    assert url == (
        f"https://ray.example.com|{SUBMISSION_ID}|https://ray.example.com/#/jobs/{SUBMISSION_ID}"
    )


def test_template_filters_work():
    url = render(make_settings("https://l/?q={{ run.transfer.name | urlencode }}"), make_run(transfer_name="a b&c"))
    assert url == "https://l/?q=a%20b%26c"


@pytest.mark.parametrize("template", ["", "x{{ 'y' * 600 }}"])
def test_log_url_is_capped_at_512_chars(template):
    settings = make_settings(template, dashboard="https://ray.example.com/" + "p" * 600)
    url = render(settings)
    assert len(url) == LOG_URL_MAX_LENGTH == 512
    assert url.startswith(("https://ray.example.com/ppp", "xyyy"))


def test_short_url_is_not_padded_or_cut():
    assert render(make_settings("https://l/{{ run.id }}")) == "https://l/42"


@pytest.mark.parametrize(
    "template",
    [
        "{{ run.__class__.__mro__ }}",
        "{{ run.__init__.__globals__ }}",
        "{{ run.transfer.__class__.__base__.__subclasses__() }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ correlation_id.__class__.__mro__ }}",
    ],
)
def test_sandbox_refuses_unsafe_attribute_access(template):
    """Refused when the settings load (the template is rendered once against a stand-in run), never at a run."""
    with pytest.raises(ValidationError) as refused:
        make_settings(template)
    assert "log_url_template" in str(refused.value) and SecurityError.__name__ in str(refused.value)


@pytest.mark.parametrize(("template", "error"), [
    ("https://logs/{{ run.id ", "TemplateSyntaxError"),
    ("https://logs/{{ run.id | no_such_filter }}", "TemplateAssertionError"),
    ("https://logs/{{ run.id / 0 }}", "TypeError"),
])
def test_a_template_that_cannot_render_is_refused_when_settings_load(template, error, monkeypatch):
    from syncmaster_ray.errors import ConfigError
    from syncmaster_ray.settings import get_settings

    with pytest.raises(ValidationError) as refused:
        make_settings(template)
    assert error in str(refused.value)
    monkeypatch.setenv("SYNCMASTER__WORKER__LOG_URL_TEMPLATE", template)
    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", "postgresql://u:p@db:5432/prod")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as named:
            get_settings()
        assert "SYNCMASTER__WORKER__LOG_URL_TEMPLATE" in named.value.reason
    finally:
        get_settings.cache_clear()


def test_a_template_failing_for_one_run_falls_back_to_the_dashboard_link():
    """Checked at load, a template can still fail on a run's own values: the claim goes on with the default link
    (a run must never stay CREATED because of its link)."""
    settings = make_settings()
    settings.worker.log_url_template = "https://logs/{{ run.transfer.name.missing_method() }}"
    url = render(settings)
    assert url == f"http://ray-head:8265/#/jobs/{SUBMISSION_ID}?correlation_id={CORRELATION_ID}&run_id=42"


def test_sandbox_does_not_render_dunder_attributes():
    # A lone unsafe attribute renders as undefined (empty), never as the Python object.
    assert render(make_settings("x{{ run.__class__ }}y")) == "xy"
