"""``node_env``: a Ray node's settings and token go to files readable by its user only, never its environment."""

from __future__ import annotations

import stat

import pytest
from dotenv import dotenv_values

from syncmaster_ray import node_env

FERNET = "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
URL = 'postgresql://u:p"a\\ss\nword@db/x'


def test_secrets_in_the_environment_are_named_whatever_their_case():
    environ = {"syncmaster__encryption__secret_key": FERNET, "RAY_AUTH_TOKEN": "t", "SYNCMASTER__RAY__ADDRESS": "x",
               "SYNCMASTER__DATABASE__URL": ""}
    assert node_env.secrets_in(environ) == ["SYNCMASTER__ENCRYPTION__SECRET_KEY", "RAY_AUTH_TOKEN"]
    reason = node_env.refusal(environ)
    assert "SYNCMASTER__ENCRYPTION__SECRET_KEY, RAY_AUTH_TOKEN" in reason and "syncmaster-ray node exec" in reason
    assert FERNET not in reason
    assert node_env.refusal({"SYNCMASTER_RAY_ENV_FILE": "/etc/x", "RAY_AUTH_TOKEN_PATH": "/etc/t"}) is None


def test_the_node_environment_keeps_paths_only_and_the_files_read_back(tmp_path):
    environ = {"PATH": "/bin", "SYNCMASTER__DATABASE__URL": URL, "SYNCMASTER__ENCRYPTION__SECRET_KEY": FERNET,
               "SYNCMASTER__RAY__PLACEMENT_TIMEOUT_SECONDS": "10", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "tok"}

    clean = node_env.node_environment(environ, tmp_path / "node")

    assert clean == {"PATH": "/bin", "RAY_AUTH_MODE": "token", "SYNCMASTER_RAY_ENV_FILE": str(tmp_path / "node/env"),
                     "RAY_AUTH_TOKEN_PATH": str(tmp_path / "node/ray-token")}
    assert node_env.secrets_in(clean) == []
    assert dotenv_values(clean["SYNCMASTER_RAY_ENV_FILE"]) == {
        "SYNCMASTER__DATABASE__URL": URL, "SYNCMASTER__ENCRYPTION__SECRET_KEY": FERNET,
        "SYNCMASTER__RAY__PLACEMENT_TIMEOUT_SECONDS": "10"}
    assert (tmp_path / "node/ray-token").read_text().strip() == "tok"
    for name in ("env", "ray-token"):
        assert stat.S_IMODE((tmp_path / "node" / name).stat().st_mode) == 0o600


def test_an_env_file_named_already_is_kept_and_the_environment_wins(tmp_path):
    earlier = tmp_path / "earlier.env"
    earlier.write_text("SYNCMASTER__ENCRYPTION__SECRET_KEY=old\nSYNCMASTER__RAY__JOB_PYTHON=/venv/bin/python")
    clean = node_env.node_environment({"SYNCMASTER_RAY_ENV_FILE": str(earlier),
                                       "SYNCMASTER__ENCRYPTION__SECRET_KEY": FERNET}, tmp_path / "node")
    assert dotenv_values(clean["SYNCMASTER_RAY_ENV_FILE"]) == {
        "SYNCMASTER__ENCRYPTION__SECRET_KEY": FERNET, "SYNCMASTER__RAY__JOB_PYTHON": "/venv/bin/python"}


def test_settings_read_from_the_written_file(tmp_path, monkeypatch):
    from syncmaster_ray.settings import get_settings

    clean = node_env.node_environment({"SYNCMASTER__DATABASE__URL": "postgresql://u:pw@db:5432/syncmaster",
                                       "SYNCMASTER__ENCRYPTION__SECRET_KEY": FERNET}, tmp_path)
    for name in ("SYNCMASTER__DATABASE__URL", "SYNCMASTER__ENCRYPTION__SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNCMASTER_RAY_ENV_FILE", clean["SYNCMASTER_RAY_ENV_FILE"])
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.secret_key == FERNET and settings.job_namespace == "syncmaster"
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("value", ["plain", "with space", 'quote"and\\backslash', "new\nline", "dollar $HOME"])
def test_dotenv_lines_read_back_unchanged(tmp_path, value):
    path = tmp_path / "env"
    path.write_text(node_env.dotenv_line("SYNCMASTER__X", value))
    assert dotenv_values(path) == {"SYNCMASTER__X": value}


def test_a_value_the_settings_file_would_expand_is_refused():
    from syncmaster_ray.errors import ConfigError

    with pytest.raises(ConfigError) as refused:
        node_env.dotenv_line("SYNCMASTER__DATABASE__URL", "postgresql://u:pa${HOME}ss@db/x")
    assert "SYNCMASTER__DATABASE__URL" in refused.value.reason and "pa${HOME}ss" not in refused.value.reason
