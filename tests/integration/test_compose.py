"""compose.yaml as the compose CLI resolves it with .env.compose.example (``config``: no Docker engine needed).

Runs with every compose CLI found: Docker's plugin (``docker compose``), a standalone ``docker-compose`` (Debian 12's
``apt-get install docker-compose`` gives v1.29.2) and ``$SYNCMASTER_TEST_COMPOSE`` (the path of another compose
binary, e.g. a v2 one). On the resolved file it checks that every service gets exactly the settings it needs, that
URLs and ports agree with the services and commands, and that the worker's queue slug follows SyncMaster's rule.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

from syncmaster_ray.db.repository import queue_slug
from syncmaster_ray.settings import AppSettings
from tests.fixtures.syncmaster_server import SYNCMASTER_VERSION, ensure_syncmaster_venv
from tests.unit.test_cluster_files import (
    COMPOSE,
    ENV_EXAMPLE,
    REPO,
    SYNCMASTER_SERVER_NAMES,
    SYNCMASTER_UI_NAMES,
    command_flags,
    read_env_file,
    settings_env_names,
)

OUR_SERVICES = ("syncmaster-ray-migrations", "ray-head", "ray-worker", "worker")
RAY_SIDE = ("worker", "ray-head", "ray-worker")  # must agree on every setting
REQUIRED = ("SYNCMASTER__DATABASE__URL", "SYNCMASTER__BROKER__URL", "SYNCMASTER__ENCRYPTION__SECRET_KEY")
# The port each third-party image listens on (postgres, rabbitmq, SyncMaster's server, SyncMaster UI's nginx).
IMAGE_PORTS = {"db": {5432}, "rabbitmq": {5672}, "server": {8000}, "frontend": {3000}}
INSTALL_HINT = "apt-get install -y docker-compose (Debian 12: compose v1.29.2), or Docker's compose plugin"


def find_compose_clis() -> list[tuple[str, list[str]]]:
    """(id, argv prefix) of each distinct working compose CLI on this machine."""
    candidates: list[list[str]] = []
    if extra := os.environ.get("SYNCMASTER_TEST_COMPOSE"):
        candidates.append(shlex.split(extra))
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if standalone := shutil.which("docker-compose"):
        candidates.append([standalone])
    found: dict[str, tuple[str, list[str]]] = {}
    for argv in candidates:
        try:
            result = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True, timeout=120,
                                    check=False)
        except OSError:
            continue
        version = result.stdout.strip().removeprefix("v")
        if result.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\S*", version):
            name = "docker-compose" if argv[1:] != ["compose"] else "docker compose"
            found.setdefault(f"{os.path.realpath(argv[0])} {argv[1:]}", (f"{name} {version}", argv))
    return list(found.values())


COMPOSE_CLIS = find_compose_clis()


def clean_env() -> dict[str, str]:
    """The test's environment without anything compose would interpolate instead of the env file."""
    prefixes = ("SYNCMASTER", "POSTGRES_", "RABBITMQ_", "COMPOSE_", "RAY_AUTH")
    return {name: value for name, value in os.environ.items() if not name.upper().startswith(prefixes)}


def run_config(argv: list[str], env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*argv, "--env-file", str(env_file), "-f", str(COMPOSE), "config"], cwd=REPO,
                          env=clean_env(), capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module", params=COMPOSE_CLIS or [None], ids=[cli[0] for cli in COMPOSE_CLIS] or ["none"])
def compose_cli(request) -> list[str]:
    if request.param is None:
        message = f"no compose CLI on this machine ({INSTALL_HINT})"
        if os.environ.get("CI"):  # CI's setup installs one: a skip there would hide a missing install step
            pytest.fail(f"{message}; cluster/setup-dev.sh must install it")
        pytest.skip(message)
    return request.param[1]


@pytest.fixture(scope="module")
def resolved(compose_cli) -> dict:
    result = run_config(compose_cli, ENV_EXAMPLE)
    assert result.returncode == 0, f"{shlex.join(compose_cli)} config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def services(resolved) -> dict[str, dict]:
    return resolved["services"]


def env_of(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {name: "" if value is None else str(value) for name, value in environment.items()}


def argv_of(service: dict) -> list[str]:
    """The service's command; for a Ray node, the `ray start` that `syncmaster-ray node exec ... --` runs."""
    command = service.get("command") or []
    argv = shlex.split(command) if isinstance(command, str) else [str(token) for token in command]
    if argv[:3] == ["syncmaster-ray", "node", "exec"] and "--" in argv:
        return argv[argv.index("--") + 1:]
    return argv


def ports_of(service: dict) -> list[tuple[str, int, int]]:
    """(host_ip, published, target) of each published port, from v2's long form or v1's short form."""
    ports = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            host_ip, published, target = ["", *str(port).split("/")[0].split(":")][-3:]
            ports.append((host_ip, int(published), int(target)))
    return ports


# --- the CLI accepts the file, and refuses it without settings ------------------------------------------------------


def test_compose_config_accepts_the_example(resolved):
    assert set(resolved["services"]) == {
        "db", "rabbitmq", "db-migrations", "syncmaster-ray-migrations", "server", "frontend", "ray-head",
        "ray-worker", "worker",
    }


def test_compose_config_names_a_missing_setting(compose_cli, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_config(compose_cli, empty)
    assert result.returncode != 0, "an empty env file was accepted (a wrapper that swallows exit codes?)"
    assert re.search(r"POSTGRES_\w+|SYNCMASTER__\w+|RABBITMQ_\w+", result.stderr), result.stderr
    assert "set it in the env file" in result.stderr


# --- settings --------------------------------------------------------------------------------------------------------


def test_each_service_gets_only_names_it_reads(services):
    ours = settings_env_names()
    for name in OUR_SERVICES:
        foreign = {n for n in env_of(services[name]) if n.startswith("SYNCMASTER") and n not in ours}
        assert not foreign, f"{name} gets names our AppSettings does not read: {sorted(foreign)}"
    server_names = set(REQUIRED) | SYNCMASTER_SERVER_NAMES
    for name, allowed in (("server", server_names), ("db-migrations", {"SYNCMASTER__DATABASE__URL"}),
                          ("frontend", SYNCMASTER_UI_NAMES)):
        names = {n for n in env_of(services[name]) if n.startswith("SYNCMASTER")}
        assert names <= allowed, f"{name} gets {sorted(names - allowed)}"
    for name in ("db", "rabbitmq", "frontend"):
        assert not set(env_of(services[name])) & set(REQUIRED), f"{name} gets SyncMaster's secrets"


def test_worker_and_ray_nodes_have_the_required_settings_and_agree(services, monkeypatch):
    environments = {name: env_of(services[name]) for name in RAY_SIDE}
    for name, environment in environments.items():
        missing = [n for n in REQUIRED if not environment.get(n)]
        assert not missing, f"{name} lacks {missing}"
        # The settings our code builds from exactly this environment are valid (URL schemes, JSON jars) once its
        # public example secrets are replaced (unchanged, they are refused: tests/unit/test_cluster_files.py).
        for variable in list(os.environ):
            if variable.upper().startswith(("SYNCMASTER", "RAY_AUTH")):
                monkeypatch.delenv(variable)
        for variable, value in {**environment, "SYNCMASTER__ENCRYPTION__SECRET_KEY": Fernet.generate_key().decode(),
                                "RAY_AUTH_TOKEN": secrets.token_hex(32)}.items():
            monkeypatch.setenv(variable, value)
        assert AppSettings().secret_key
    worker = environments["worker"]
    assert all(environment == worker for environment in environments.values()), "Ray nodes and worker disagree"


def test_ray_side_runs_with_token_auth_and_only_it_gets_the_token(services):
    for name in RAY_SIDE:
        environment = env_of(services[name])
        assert environment.get("RAY_AUTH_MODE") == "token" and environment.get("RAY_AUTH_TOKEN"), name
    for name in set(services) - set(RAY_SIDE):
        assert "RAY_AUTH_TOKEN" not in env_of(services[name]), f"{name} gets the Ray token"
    # The head's healthcheck asks the Jobs API with the token (without it the API answers 401).
    assert "dashboard_auth_headers" in " ".join(services["ray-head"]["healthcheck"]["test"])


def test_server_has_what_syncmaster_needs(services):
    environment = env_of(services["server"])
    for name in (*REQUIRED, "SYNCMASTER__AUTH__ACCESS_TOKEN__SECRET_KEY"):
        assert environment.get(name), f"server lacks {name}"
    assert env_of(services["db-migrations"]).get("SYNCMASTER__DATABASE__URL")
    ui = env_of(services["frontend"])
    assert urlsplit(ui["SYNCMASTER__UI__API_BROWSER_URL"]).port == ports_of(services["server"])[0][1]
    origins = json.loads(environment["SYNCMASTER__SERVER__CORS__ALLOW_ORIGINS"])
    assert f"http://localhost:{ports_of(services['frontend'])[0][1]}" in origins


def test_server_names_are_read_by_syncmaster_itself():
    # Walk SyncMaster's own models in its venv: the server's, manage_superusers' (run by the image's entrypoint)
    # and DummyAuthProvider's (it reads `auth.access_token` from the auth section's extra keys).
    script = """
import json, types, typing
from pydantic import BaseModel
from syncmaster.server.settings import ServerAppSettings
from syncmaster.server.scripts.manage_superusers import SuperuserAppSettings
from syncmaster.server.settings.auth.dummy import DummyAuthProviderSettings
config = ServerAppSettings.model_config
prefix, delimiter = config["env_prefix"].upper(), config["env_nested_delimiter"]
names = set()
def models(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from models(arg)
def walk(cls, path):
    for name, field in cls.model_fields.items():
        key = [*path, (field.alias or name).upper()]
        names.add(prefix + delimiter.join(key))
        for nested in models(field.annotation):
            walk(nested, key)
walk(ServerAppSettings, [])
walk(SuperuserAppSettings, [])
walk(DummyAuthProviderSettings, ["AUTH"])
print(json.dumps(sorted(names)))
"""
    # Built here if no test built it yet (on a fresh clone this module runs first): a skip would hide the check.
    result = subprocess.run([str(ensure_syncmaster_venv()), "-c", script], env=clean_env(), capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    syncmaster_names = set(json.loads(result.stdout))
    assert SYNCMASTER_SERVER_NAMES | set(REQUIRED) <= syncmaster_names, sorted(
        (SYNCMASTER_SERVER_NAMES | set(REQUIRED)) - syncmaster_names
    )


def test_urls_point_at_the_compose_services(services):
    environment = env_of(services["worker"])
    db, broker = urlsplit(environment["SYNCMASTER__DATABASE__URL"]), urlsplit(environment["SYNCMASTER__BROKER__URL"])
    postgres, rabbitmq = env_of(services["db"]), env_of(services["rabbitmq"])
    assert db.scheme == "postgresql+asyncpg", "SyncMaster's server needs the asyncpg form"
    assert (db.hostname, db.port, db.path) == ("db", 5432, f"/{postgres['POSTGRES_DB']}")
    assert (db.username, db.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])
    assert (broker.scheme, broker.hostname, broker.port) == ("amqp", "rabbitmq", 5672)
    assert (broker.username, broker.password) == (rabbitmq["RABBITMQ_DEFAULT_USER"], rabbitmq["RABBITMQ_DEFAULT_PASS"])
    assert env_of(services["server"])["SYNCMASTER__DATABASE__URL"] == environment["SYNCMASTER__DATABASE__URL"]
    head = command_flags(argv_of(services["ray-head"]))
    ray = urlsplit(environment["SYNCMASTER__RAY__ADDRESS"])
    assert (ray.hostname, str(ray.port)) == ("ray-head", head["--dashboard-port"])


# --- ports and commands ----------------------------------------------------------------------------------------------


def test_ray_head_publishes_the_ports_its_command_opens(services):
    head = services["ray-head"]
    flags = command_flags(argv_of(head))
    assert argv_of(head)[:3] == ["ray", "start", "--head"] and "--block" in flags
    assert head["command"].startswith("syncmaster-ray node exec --dir /run/syncmaster-ray -- ray start")
    assert flags["--dashboard-host"] == "0.0.0.0", "the dashboard must listen beyond the container's loopback"
    assert (flags["--port"], flags["--dashboard-port"]) == ("6379", "8265")
    opened = {int(flags[name]) for name in ("--port", "--dashboard-port", "--metrics-export-port",
                                            "--ray-client-server-port")}
    published = ports_of(head)
    assert {target for _, _, target in published} == opened
    assert all(host_ip == "127.0.0.1" and port == target for host_ip, port, target in published)
    healthcheck = " ".join(head["healthcheck"]["test"])
    assert f"127.0.0.1:{flags['--dashboard-port']}/" in healthcheck
    dashboard = urlsplit(env_of(services["worker"])["SYNCMASTER__RAY__DASHBOARD_URL"])
    assert dashboard.port in {port for _, port, target in published if target == int(flags["--dashboard-port"])}


def test_ray_worker_joins_the_head_and_exports_metrics(services):
    head, node = command_flags(argv_of(services["ray-head"])), command_flags(argv_of(services["ray-worker"]))
    assert node["--address"] == f"ray-head:{head['--port']}" and "--block" in node
    assert node["--metrics-export-port"] == head["--metrics-export-port"]
    assert not ports_of(services["ray-worker"]), "one host port cannot serve several worker nodes"


def test_other_services_publish_their_images_ports_on_loopback(services):
    for name, ports in IMAGE_PORTS.items():
        published = ports_of(services[name])
        assert {target for _, _, target in published} == ports, name
        assert all(host_ip == "127.0.0.1" for host_ip, _, _ in published), name
    for name in set(services) - set(IMAGE_PORTS) - {"ray-head"}:
        assert not ports_of(services[name]), f"{name} publishes ports"


def test_worker_listens_on_a_syncmaster_queue_slug(services):
    argv = argv_of(services["worker"])
    assert argv[:4] == ["celery", "-A", "syncmaster_ray.worker", "worker"]
    queues = next(value for flag, value in zip(argv, [*argv[1:], ""], strict=True) if flag in ("-Q", "--queues"))
    for slug in queues.split(","):
        match = re.fullmatch(r"(\d+)-(\w+)", slug)
        assert match, f"{slug!r} is not {{group_id}}-{{name}}"
        # What SyncMaster computes when the queue is created: the name part is already in normal form.
        assert queue_slug(int(match.group(1)), match.group(2)) == slug
    assert queue_slug(1, "Ray Queue") == "1-ray_queue"  # the compat notes' verified example


# --- order and images ------------------------------------------------------------------------------------------------


def depends(service: dict) -> dict[str, str]:
    depends_on = service.get("depends_on") or {}
    if isinstance(depends_on, list):
        return dict.fromkeys(depends_on, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in depends_on.items()}


def test_syncmaster_migrations_run_before_the_server_and_ours(services):
    migrations, server = services["db-migrations"], services["server"]
    assert migrations["image"] == server["image"] == f"mtsrus/syncmaster-server:{SYNCMASTER_VERSION}"
    assert [str(token) for token in migrations["entrypoint"]] == [
        "python", "-m", "syncmaster.db.migrations", "upgrade", "head"
    ]
    assert depends(migrations)["db"] == "service_healthy"
    assert depends(server)["db-migrations"] == "service_completed_successfully"
    assert depends(services["syncmaster-ray-migrations"])["db-migrations"] == "service_completed_successfully"
    for name in ("ray-head", "worker"):
        assert depends(services[name])["syncmaster-ray-migrations"] == "service_completed_successfully", name
    assert depends(services["ray-worker"])["ray-head"] == "service_healthy"
    assert depends(services["worker"])["ray-head"] == "service_healthy"
    assert services["frontend"]["image"].startswith("mtsrus/syncmaster-ui:")


def test_ray_nodes_and_worker_use_the_image_built_from_cluster_dockerfile(services):
    for name in OUR_SERVICES:
        build = services[name]["build"]
        assert Path(build["context"]).resolve() == REPO, name
        assert (Path(build["context"]) / build["dockerfile"]).resolve() == REPO / "cluster" / "Dockerfile", name
    assert len({services[name]["image"] for name in OUR_SERVICES}) == 1
    for name in RAY_SIDE:
        assert services[name].get("init") is True, f"{name}: Ray and Celery fork children; an init reaps them"


def test_example_lists_every_variable_the_resolved_file_uses(services):
    example = read_env_file(ENV_EXAMPLE)
    for name, service in services.items():
        for variable, value in env_of(service).items():
            if variable in example:
                assert value == example[variable], f"{name}: {variable} is not the example's value"
