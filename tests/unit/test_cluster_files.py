"""Cluster files as plain files: ray-cluster.yaml through Ray's own validation, cluster/bootstrap-node.sh,
cluster/Dockerfile, and what compose.yaml and .env.compose.example say about settings and secrets.

tests/integration/test_compose.py checks compose.yaml as the compose CLI resolves it.
"""

from __future__ import annotations

import re
import secrets
import shlex
import subprocess
import types
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from pydantic import BaseModel

from syncmaster_ray.settings import DEFAULT_MARIADB_JAR, DEFAULT_POSTGRES_JAR, AppSettings, SparkSettings

REPO = Path(__file__).resolve().parents[2]
RAY_CLUSTER = REPO / "ray-cluster.yaml"
BOOTSTRAP = REPO / "cluster" / "bootstrap-node.sh"
DOCKERFILE = REPO / "cluster" / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.compose.example"
NODE_ENV_FILE = "/etc/syncmaster-ray/env"
NODE_TOKEN_FILE = "/etc/syncmaster-ray/ray-auth-token"
DEFAULT_JARS = [DEFAULT_POSTGRES_JAR, DEFAULT_MARIADB_JAR]
# Debian packages behind the default jars (/usr/share/java/postgresql.jar, mariadb-java-client.jar), and the JDK the
# stack runs on (OpenJDK 17: onETL 0.17 supports Java up to 20).
NODE_PACKAGES = ["openjdk-17-jre-headless", "libpostgresql-jdbc-java", "libmariadb-java"]

# SYNCMASTER__* names read by SyncMaster 0.3.7 itself, not by us: the server (ServerAppSettings and the settings of
# its manage_superusers script, run by the image's entrypoint) and the UI image's entrypoint (SYNCMASTER__UI__*).
# tests/integration/test_compose.py checks the server's against SyncMaster's own models when its venv exists.
SYNCMASTER_SERVER_NAMES = frozenset({
    "SYNCMASTER__AUTH__PROVIDER",
    "SYNCMASTER__AUTH__ACCESS_TOKEN__SECRET_KEY",
    "SYNCMASTER__SUPERUSERS",
    "SYNCMASTER__SERVER__CORS__ALLOW_ORIGINS",
    "SYNCMASTER__SERVER__CORS__ALLOW_METHODS",
    "SYNCMASTER__SERVER__CORS__ALLOW_HEADERS",
    "SYNCMASTER__SERVER__CORS__ALLOW_CREDENTIALS",
})
SYNCMASTER_UI_NAMES = frozenset({"SYNCMASTER__UI__API_BROWSER_URL", "SYNCMASTER__UI__AUTH_PROVIDER"})


# --- helpers (tests/integration/test_compose.py uses them too) -----------------------------------------------------


def settings_env_names(model: type[BaseModel] = AppSettings) -> set[str]:
    """Every env name pydantic-settings reads for ``model``: each field, nested models walked with the model's own
    prefix and nesting delimiter (a section's name is valid too: it takes a JSON object)."""
    config = AppSettings.model_config
    prefix, delimiter = config["env_prefix"].upper(), config["env_nested_delimiter"]
    names: set[str] = set()

    def walk(cls: type[BaseModel], path: list[str]) -> None:
        for name, field in cls.model_fields.items():
            key = [*path, (field.alias or name).upper()]
            names.add(prefix + delimiter.join(key))
            for nested in _models_in(field.annotation):
                walk(nested, key)

    walk(model, [])
    return names


def _models_in(annotation: object) -> Iterator[type[BaseModel]]:
    """The models a field holds directly or through Optional/Union (not inside dict/list: their keys are data)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a compose env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, separator, value = line.partition("=")
        assert separator and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}:{number}: not KEY=value: {line!r}"
        assert key not in values, f"{path.name}:{number}: {key} set twice"
        values[key] = value
    return values


def command_flags(command: str | list[str]) -> dict[str, str]:
    """``--name=value`` and bare ``--flag`` options of a command line: ``--port=6379`` -> ``{"--port": "6379"}``."""
    tokens = shlex.split(command) if isinstance(command, str) else list(command)
    return {name: value for name, _, value in (t.partition("=") for t in tokens if t.startswith("--"))}


def ray_start_options() -> set[str]:
    from ray.scripts.scripts import start

    return {opt for param in start.params for opt in param.opts}


# --- ray-cluster.yaml ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_config() -> dict:
    return yaml.safe_load(RAY_CLUSTER.read_text())


def test_ray_cluster_yaml_passes_rays_own_validation(cluster_config):
    # What `ray up` does before it touches a machine (commands._bootstrap_config): prepare (local provider: one node
    # type, min/max workers from worker_ips; defaults filled in), let the provider fill resources, validate against
    # ray-schema.json plus Ray's own checks, then the provider's bootstrap.
    from ray.autoscaler._private.providers import _get_node_provider_cls
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(cluster_config)
    provider_cls = _get_node_provider_cls(prepared["provider"])
    prepared = provider_cls.fillout_available_node_types_resources(prepared)
    validate_config(prepared)
    resolved = provider_cls.bootstrap_config(prepared)

    workers = cluster_config["provider"]["worker_ips"]
    (node_type,) = resolved["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(workers) == resolved["max_workers"]
    assert resolved["setup_commands"] == cluster_config["setup_commands"]


def test_ray_cluster_yaml_is_an_on_premises_cluster(cluster_config):
    provider, auth = cluster_config["provider"], cluster_config["auth"]
    assert provider["type"] == "local"
    assert provider["head_ip"] and provider["worker_ips"] and provider["head_ip"] not in provider["worker_ips"]
    assert auth["ssh_user"] and auth["ssh_private_key"]


def test_setup_runs_the_bootstrap_script_shipped_by_file_mounts(cluster_config):
    mounts = cluster_config["file_mounts"]
    # file_mounts: remote -> local, local relative to the repository root (`ray up` runs there).
    remote_dir = next(remote for remote, local in mounts.items() if (REPO / local).resolve() == BOOTSTRAP.parent)
    assert any(f"{remote_dir}/{BOOTSTRAP.name}" in command for command in cluster_config["setup_commands"])
    assert any(Path(local).name == "dist" for local in mounts.values()), "the wheel directory is not uploaded"


def test_bootstrap_script_is_valid_bash_and_installs_the_stack():
    assert BOOTSTRAP.is_file() and BOOTSTRAP.stat().st_mode & 0o111, "cluster/bootstrap-node.sh is not executable"
    result = subprocess.run(["bash", "-n", str(BOOTSTRAP)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    text = BOOTSTRAP.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    for package in NODE_PACKAGES:
        assert package in text
    for jar in DEFAULT_JARS:  # checked at the paths SYNCMASTER__SPARK__JARS defaults to
        assert jar in text
    assert NODE_ENV_FILE in text


def test_start_commands_read_settings_from_the_node_file_and_inline_no_secret(cluster_config):
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(command for command in cluster_config[key] if "ray start" in command)
        assert f"SYNCMASTER_RAY_ENV_FILE={NODE_ENV_FILE}" in start, key
        assert 'PATH="$HOME/syncmaster-ray/bin:$PATH"' in start, f"{key}: `python` must be the venv's for jobs"
    inlined = re.findall(r"SYNCMASTER__\w+\s*[=:]", yaml.safe_dump(cluster_config))  # comments may name them
    assert not inlined, f"ray-cluster.yaml sets {inlined}: settings belong in the node's {NODE_ENV_FILE}"


def test_start_commands_turn_token_auth_on_with_the_node_token_file(cluster_config):
    # Ray's token authentication: every node the same way, the token from a private file on the node (bootstrap
    # refuses a node without it), never inlined here.
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(command for command in cluster_config[key] if "ray start" in command)
        exported = start.split("&&")[0]
        assert "RAY_AUTH_MODE=token" in exported and f"RAY_AUTH_TOKEN_PATH={NODE_TOKEN_FILE}" in exported, key
    assert not re.search(r"RAY_AUTH_TOKEN\s*[=:]", yaml.safe_dump(cluster_config))
    text = BOOTSTRAP.read_text()
    assert NODE_TOKEN_FILE in text and "RAY_AUTH_TOKEN_PATH" in text


def test_start_commands_enable_the_dashboard_and_metrics(cluster_config):
    head = command_flags(next(c for c in cluster_config["head_start_ray_commands"] if "ray start" in c))
    worker = command_flags(next(c for c in cluster_config["worker_start_ray_commands"] if "ray start" in c))
    assert "--head" in head and head["--dashboard-host"] == "0.0.0.0" and head["--dashboard-port"] == "8265"
    assert head["--metrics-export-port"] and worker["--metrics-export-port"] == head["--metrics-export-port"]
    assert worker["--address"] == f"$RAY_HEAD_IP:{head['--port']}"
    assert head["--autoscaling-config"] == "~/ray_bootstrap_config.yaml"
    assert set(head) | set(worker) <= ray_start_options()


# --- cluster/Dockerfile --------------------------------------------------------------------------------------------


def test_dockerfile_installs_jdk_17_the_default_jars_and_this_package():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11", text, re.MULTILINE)
    for package in NODE_PACKAGES:
        assert package in text
    for jar in DEFAULT_JARS:
        assert f"test -r {jar}" in text
    assert "COPY syncmaster_ray ./syncmaster_ray" in text and "pip install --no-cache-dir ." in text
    assert SparkSettings().jars == DEFAULT_JARS
    # The build context is the repository root: only the sources go in (never .venv, .cache or env files).
    ignore = [line for line in (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
              if line and not line.startswith("#")]
    assert ignore[0] == "*" and {"!pyproject.toml", "!README.md", "!syncmaster_ray"} <= set(ignore)


# --- compose.yaml and .env.compose.example as files ----------------------------------------------------------------


def compose_interpolations() -> dict[str, str]:
    """``${NAME...}`` uses in compose.yaml (``$${...}`` is a literal ``$``): name -> the operator (``:?``, ``:-``)."""
    found: dict[str, str] = {}
    for match in re.finditer(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[?-])?", COMPOSE.read_text()):
        found[match.group(1)] = match.group(2) or ""
    return found


def test_env_example_documents_exactly_what_compose_uses():
    example, used = read_env_file(ENV_EXAMPLE), compose_interpolations()
    assert set(used) == set(example), (
        f"used by compose.yaml but not in the example: {sorted(set(used) - set(example))}; "
        f"in the example but unused: {sorted(set(example) - set(used))}"
    )
    # Optional (":-") only where an empty value means "the default" to the reader; everything else must be set.
    optional = {name for name, operator in used.items() if operator == ":-"}
    assert optional == {
        "SYNCMASTER__RAY__DASHBOARD_URL", "SYNCMASTER__RAY__JOB_NAMESPACE", "SYNCMASTER__WORKER__LOG_URL_TEMPLATE",
        "SYNCMASTER__RAY__STANDBY_DRIVERS",
    }
    assert all(used[name] == ":?" for name in set(used) - optional)


def test_every_syncmaster_name_in_the_example_is_read_by_someone():
    ours = settings_env_names()
    for name in read_env_file(ENV_EXAMPLE):
        if name.startswith("SYNCMASTER__"):
            assert name in ours | SYNCMASTER_SERVER_NAMES | SYNCMASTER_UI_NAMES, f"{name}: nothing reads it"
    # The walk sees nested sections (sanity check of the walker itself).
    assert {"SYNCMASTER__DATABASE__URL", "SYNCMASTER__ENCRYPTION__SECRET_KEY", "SYNCMASTER__RAY__ADDRESS",
            "SYNCMASTER__SPARK__JARS", "SYNCMASTER__HWM_STORE__PASSWORD"} <= ours
    assert not ours & (SYNCMASTER_SERVER_NAMES | SYNCMASTER_UI_NAMES)


def _example_in_the_environment(monkeypatch, **replaced: str) -> None:
    example = {**read_env_file(ENV_EXAMPLE), **replaced}
    for name, value in example.items():
        if name in settings_env_names() or name.startswith("RAY_AUTH"):
            monkeypatch.setenv(name, value)


def test_an_unchanged_copy_of_the_example_is_refused_naming_its_public_secrets(monkeypatch):
    """The example's Fernet key and Ray token are public: an unchanged copy must not run (worker, job and CLI all
    load these settings)."""
    from pydantic import ValidationError

    _example_in_the_environment(monkeypatch)
    with pytest.raises(ValidationError) as refused:
        AppSettings()
    assert "example key of .env.compose.example" in str(refused.value)
    _example_in_the_environment(monkeypatch, SYNCMASTER__ENCRYPTION__SECRET_KEY=Fernet.generate_key().decode())
    with pytest.raises(ValidationError) as refused:
        AppSettings()
    assert "RAY_AUTH_TOKEN" in str(refused.value) and "example token" in str(refused.value)


def test_the_example_with_its_secrets_replaced_makes_valid_settings_for_our_processes(monkeypatch):
    _example_in_the_environment(monkeypatch, SYNCMASTER__ENCRYPTION__SECRET_KEY=Fernet.generate_key().decode(),
                                RAY_AUTH_TOKEN=secrets.token_hex(32))
    settings = AppSettings()
    assert settings.secret_key and settings.database.sync_url.startswith("postgresql+psycopg://")
    assert settings.spark.jars == DEFAULT_JARS, "the example's jars must be the ones the image and bootstrap install"


def test_compose_inlines_no_secret():
    compose = yaml.safe_load(COMPOSE.read_text())
    for service_name, service in compose["services"].items():
        assert "env_file" not in service, f"{service_name}: env_file hands every variable over; list what it needs"
        for name, value in (service.get("environment") or {}).items():
            literal = str(value)
            if not literal.startswith("${"):
                assert name == "PROMETHEUS_MULTIPROC_DIR", f"{service_name}: {name} is inlined; use ${{{name}:?...}}"


def test_compose_commands_use_only_real_ray_and_celery_options():
    from celery.bin.celery import celery
    from celery.bin.worker import worker

    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("ray-head", "ray-worker"):
        argv = shlex.split(compose[name]["command"])
        # Secrets out of the node's environment first (syncmaster-ray node exec), then Ray.
        assert argv[:5] == ["syncmaster-ray", "node", "exec", "--dir", "/run/syncmaster-ray"], name
        assert argv[5] == "--" and compose[name]["tmpfs"] == ["/run/syncmaster-ray:mode=0700"], name
        argv = argv[6:]
        assert argv[:2] == ["ray", "start"], name
        assert set(command_flags(argv)) <= ray_start_options(), f"{name}: unknown `ray start` option"
    argv = shlex.split(compose["worker"]["command"])
    assert argv[:4] == ["celery", "-A", "syncmaster_ray.worker", "worker"]
    assert {"-A", "--app"} <= {opt for param in celery.params for opt in param.opts}
    options = {opt for param in worker.params for opt in param.opts}
    assert {token.partition("=")[0] for token in argv[4:] if token.startswith("-")} <= options
