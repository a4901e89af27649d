"""Ray's token authentication from our side: which token we send to the dashboard, that it is the header Ray's own
clients send, that ``status`` and the Jobs API client send it, and that the token is a secret we scrub."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncmaster_ray.ray_client import dashboard_auth_headers, ray_auth_secrets, ray_auth_token

TOKEN = "0123456789abcdef" * 4
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@pytest.fixture(autouse=True)
def _no_ray_auth_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither this machine's Ray variables nor its ~/.ray/auth_token count here."""
    for name in AUTH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write_token(path: Path, token: str = TOKEN) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{token}\n")  # Ray strips whitespace: a trailing newline is common
    return path


def test_no_header_unless_ray_auth_mode_is_token(tmp_path):
    write_token(tmp_path / "home" / ".ray" / "auth_token")
    assert dashboard_auth_headers({"HOME": str(tmp_path / "home")}) == {}
    assert dashboard_auth_headers({"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": TOKEN}) == {}
    assert dashboard_auth_headers({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}) == {
        "authorization": f"Bearer {TOKEN}"
    }


def test_token_sources_in_rays_order(tmp_path):
    home = tmp_path / "home"
    path = write_token(tmp_path / "token", "from-path")
    write_token(home / ".ray" / "auth_token", "from-default-file")
    environ = {"HOME": str(home), "RAY_AUTH_TOKEN": "from-env", "RAY_AUTH_TOKEN_PATH": str(path)}
    assert ray_auth_token(environ) == "from-env"
    assert ray_auth_token({**environ, "RAY_AUTH_TOKEN": ""}) == "from-path"
    assert ray_auth_token({"HOME": str(home)}) == "from-default-file"
    assert ray_auth_token({"HOME": str(tmp_path / "nobody")}) is None
    assert ray_auth_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}) is None


def test_the_process_environment_is_the_default(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    assert dashboard_auth_headers() == {"authorization": f"Bearer {TOKEN}"}
    assert ray_auth_secrets() == (TOKEN,)


def test_the_token_is_a_secret_even_where_auth_is_off(tmp_path):
    write_token(tmp_path / "home" / ".ray" / "auth_token")
    assert ray_auth_secrets({"HOME": str(tmp_path / "home")}) == (TOKEN,)
    assert ray_auth_secrets({"HOME": str(tmp_path / "nobody")}) == ()


@pytest.mark.parametrize("source", ["env", "path", "default-file", "mode-unset", "mode-disabled"])
def test_our_header_is_the_one_rays_own_clients_send(source, tmp_path):
    """Ray's JobSubmissionClient and state API add ``get_auth_headers_if_auth_enabled({})``: we must send the same."""
    home = tmp_path / "home"
    environ = {"HOME": str(home), "RAY_AUTH_MODE": "token"}
    if source == "env":
        environ["RAY_AUTH_TOKEN"] = TOKEN
    elif source == "path":
        environ["RAY_AUTH_TOKEN_PATH"] = str(write_token(tmp_path / "token"))
    else:
        write_token(home / ".ray" / "auth_token")
        if source == "mode-unset":
            del environ["RAY_AUTH_MODE"]
        elif source == "mode-disabled":
            environ["RAY_AUTH_MODE"] = "disabled"
    script = ("import json; from ray._private.authentication.http_token_authentication import "
              "get_auth_headers_if_auth_enabled as h; print(json.dumps(h({})))")
    clean = {k: v for k, v in os.environ.items() if k not in AUTH_VARIABLES}
    result = subprocess.run([sys.executable, "-c", script], env={**clean, **environ}, capture_output=True,
                            text=True, timeout=120, check=True)
    rays = json.loads(result.stdout.strip().splitlines()[-1])
    assert dashboard_auth_headers(environ) == rays
    assert bool(rays) == (source in ("env", "path", "default-file"))


# --- a stand-in dashboard that wants the token ------------------------------------------------------------------


class _Dashboard(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("authorization"))
        if self.headers.get("authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b"Unauthorized: Missing authentication token")
            return
        if self.path.startswith("/api/version"):
            body: dict = {"version": "4", "ray_version": "2.60.0", "ray_commit": "x"}
        else:
            body = {"result": True, "msg": "", "data": {"result": {  # the state API's list answer, empty
                "result": [], "total": 0, "num_after_truncation": 0, "num_filtered": 0}}}
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def dashboard() -> Iterator[str]:
    _Dashboard.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Dashboard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_status_sends_the_token_and_names_the_variables_when_refused(dashboard, monkeypatch):
    from syncmaster_ray.status import fetch_capacity

    # In a fresh interpreter: Ray's HTTP clients add the token of whatever auth mode the process first saw (a session
    # of this test run may have had token auth), and this refusal is about a process without a token.
    refused = subprocess.run(
        [sys.executable, "-c", f"from syncmaster_ray.status import fetch_capacity; "
                               f"print(fetch_capacity({dashboard!r}).error)"],
        env={key: value for key, value in os.environ.items() if key not in AUTH_VARIABLES},
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert "HTTP 401" in refused and "RAY_AUTH_MODE=token" in refused
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    assert fetch_capacity(dashboard).error is None
    assert _Dashboard.seen[-1] == f"Bearer {TOKEN}"


def test_jobs_client_sends_the_token_and_a_refusal_is_a_clear_submit_error(dashboard, monkeypatch):
    from syncmaster_ray.errors import SubmitError
    from syncmaster_ray.ray_client import RayJobs

    with pytest.raises(SubmitError) as refused:
        RayJobs(dashboard)
    assert "token authentication" in str(refused.value) and "RAY_AUTH_TOKEN" in str(refused.value)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    RayJobs(dashboard)  # the version check passed with the token
    assert _Dashboard.seen[-1] == f"Bearer {TOKEN}"


def test_supervisor_and_job_scrub_the_token(monkeypatch, tmp_path):
    import importlib

    from cryptography.fernet import Fernet

    from syncmaster_ray.settings import AppSettings, get_settings

    monkeypatch.setenv("SYNCMASTER__DATABASE__URL", "postgresql://import:only@127.0.0.1:1/import_only")
    get_settings.cache_clear()
    supervisor = importlib.import_module("syncmaster_ray.worker.supervisor")
    settings = AppSettings(database={"url": "postgresql://u:p@db:5432/x"}, encryption={"secret_key":
                           Fernet.generate_key().decode()})
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(write_token(tmp_path / "token")))
    assert TOKEN in supervisor.RunSupervisor(settings, repo=None)._secrets()
    assert TOKEN in settings.secret_values()  # what the job and its actor scrub


@pytest.mark.parametrize(("status", "open_"), [(200, True), (401, False), (403, False)])
def test_a_jobs_api_listing_jobs_without_a_token_is_found_open(status, open_):
    """What the worker checks once when it starts (it then warns): a real HTTP server answering as Ray's dashboard
    does with and without token authentication."""
    import http.server
    import threading

    from syncmaster_ray.ray_client import accepts_anonymous_jobs

    class Dashboard(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path == "/api/jobs/" else 404)
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dashboard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert accepts_anonymous_jobs(f"http://127.0.0.1:{server.server_address[1]}/") is open_
    finally:
        server.shutdown()
    assert accepts_anonymous_jobs("http://127.0.0.1:9") is False  # nothing listens there
