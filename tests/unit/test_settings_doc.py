"""docs/settings.md holds the settings tables rendered from settings.py's Field descriptions, never a secret."""

from __future__ import annotations

import typing

from pydantic import BaseModel, SecretStr

from syncmaster_ray.settings import AppSettings, BrokerSettings
from syncmaster_ray_dev import settings_doc


def test_docs_settings_md_is_in_sync_with_the_code():
    _, body, _ = settings_doc.split(settings_doc.DOC.read_text())
    assert body == settings_doc.render(), f"docs/settings.md is out of date: run {settings_doc.COMMAND}"


def test_every_setting_has_a_description_and_a_row():
    rendered = settings_doc.render()
    for section, info in AppSettings.model_fields.items():
        assert info.description, section
        model = next(a for a in typing.get_args(info.annotation) or (info.annotation,)
                     if isinstance(a, type) and issubclass(a, BaseModel))
        for name, field in model.model_fields.items():
            assert field.description, f"{section}.{name} has no description"
            assert f"`SYNCMASTER__{section.upper()}__{name.upper()}`" in rendered


def test_secret_defaults_are_never_rendered():
    default = BrokerSettings.model_fields["url"].default
    assert isinstance(default, SecretStr)
    rendered = settings_doc.render()
    assert default.get_secret_value() not in rendered
    assert "guest" not in rendered


def test_check_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "settings.md"
    stale.write_text(f"# Settings\n\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\n")
    monkeypatch.setattr(settings_doc, "DOC", stale)
    assert settings_doc.main(["--check"]) == 1
    assert settings_doc.COMMAND in capsys.readouterr().err
    assert settings_doc.main([]) == 0
    assert settings_doc.main(["--check"]) == 0
    assert stale.read_text().startswith("# Settings\n\n")
