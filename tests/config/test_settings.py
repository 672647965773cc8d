"""Settings: precedence, derived defaults, errors, and the README table."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchnb.config import SETTINGS_TABLE, load_settings, render_settings_table
from batchnb.errors import ConfigurationError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults_live_in_the_workspace(tmp_path: Path) -> None:
    settings = load_settings(environ={"BATCHNB_HOME": str(tmp_path)})
    assert settings.home == tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'batchnb.db'}"
    assert settings.queue_url == f"sqlite:///{tmp_path.resolve() / 'queue.db'}"
    assert settings.storage_url == str(tmp_path.resolve() / "files")
    assert settings.plan == "local"
    assert settings.lease_seconds == 60.0


def test_environment_beats_config_file_and_arguments_beat_both(tmp_path: Path) -> None:
    (tmp_path / "batchnb.toml").write_text(
        '[batchnb]\nlease_seconds = 10\nplan = "plus"\nworker_threads = 3\n'
    )
    env = {"BATCHNB_HOME": str(tmp_path), "BATCHNB_PLAN": "growth"}
    settings = load_settings(environ=env, worker_threads=7)
    assert settings.lease_seconds == 10.0
    assert settings.plan == "growth"
    assert settings.worker_threads == 7


def test_config_file_named_by_variable(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('queue_url = "redis://127.0.0.1:6379/3"\n')
    env = {"BATCHNB_HOME": str(tmp_path / "home"), "BATCHNB_CONFIG": str(config)}
    assert load_settings(environ=env).queue_url == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BATCHNB_LEASE_SECONDS": "soon"}, "BATCHNB_LEASE_SECONDS"),
        ({"BATCHNB_LEASE_SECONDS": "0"}, "must be positive"),
        ({"BATCHNB_WORKER_THREADS": "0"}, "at least 1"),
        ({"BATCHNB_CONFIG": "/nonexistent/batchnb.toml"}, "does not exist"),
    ],
)
def test_bad_values_say_what_to_fix(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(environ={"BATCHNB_HOME": str(tmp_path), **env})


def test_unknown_keys_in_config_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "batchnb.toml").write_text("lease_secs = 3\n")
    with pytest.raises(ConfigurationError, match="lease_secs"):
        load_settings(environ={"BATCHNB_HOME": str(tmp_path)})


def test_user_comes_from_jupyterhub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    assert load_settings(environ={"BATCHNB_HOME": str(tmp_path)}).user == "ada"
    monkeypatch.delenv("JUPYTERHUB_USER")
    assert load_settings(environ={"BATCHNB_HOME": str(tmp_path)}).user not in ("", "ada")


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_settings_table() in text
    for setting in SETTINGS_TABLE:
        assert f"`{setting.env_var}`" in text


def test_settings_are_declared_once_as_fields_of_settings() -> None:
    import dataclasses

    from batchnb.config import Settings

    assert [s.name for s in SETTINGS_TABLE] == [f.name for f in dataclasses.fields(Settings)]
    assert all(s.help for s in SETTINGS_TABLE)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("true", True),
        ("1", True),
        ("yes", True),
        ("ON", True),
    ],
)
def test_a_boolean_reads_false_as_false(tmp_path: Path, word: str, expected: bool) -> None:
    env = {"BATCHNB_HOME": str(tmp_path), "BATCHNB_RESULT_CACHE": word}
    assert load_settings(environ=env).result_cache is expected


def test_a_boolean_refuses_other_words(tmp_path: Path) -> None:
    env = {"BATCHNB_HOME": str(tmp_path), "BATCHNB_RESULT_CACHE": "nope"}
    with pytest.raises(ConfigurationError, match=r"BATCHNB_RESULT_CACHE.*true or false"):
        load_settings(environ=env)


def test_list_settings_are_parsed_once_from_text_or_lists(tmp_path: Path) -> None:
    env = {"BATCHNB_HOME": str(tmp_path), "BATCHNB_ADMINS": " root, boss ,,"}
    settings = load_settings(environ=env, plugins=["a", " b "])
    assert settings.admins == frozenset({"root", "boss"})
    assert settings.plugins == ("a", "b")
    (tmp_path / "batchnb.toml").write_text('plugins = ["x", "y"]\n')
    assert load_settings(environ={"BATCHNB_HOME": str(tmp_path)}).plugins == ("x", "y")


def test_extractor_options_from_json_or_a_toml_table(tmp_path: Path) -> None:
    env = {
        "BATCHNB_HOME": str(tmp_path),
        "BATCHNB_EXTRACTOR_OPTIONS": '{"mine": {"model_path": "/m.gguf"}}',
    }
    assert load_settings(environ=env).options_for("mine") == {"model_path": "/m.gguf"}
    (tmp_path / "batchnb.toml").write_text("[batchnb.extractor_options.mine]\nthreads = 2\n")
    settings = load_settings(environ={"BATCHNB_HOME": str(tmp_path)})
    assert settings.options_for("mine") == {"threads": 2}
    assert settings.options_for("other") == {}
    with pytest.raises(ConfigurationError, match="JSON object"):
        load_settings(environ={**env, "BATCHNB_EXTRACTOR_OPTIONS": "[1]"})


def test_secrets_stay_out_of_repr_and_describe(tmp_path: Path) -> None:
    settings = load_settings(environ={"BATCHNB_HOME": str(tmp_path)}, openai_api_key="sk-123")
    assert "sk-123" not in repr(settings)
    assert settings.describe()["openai_api_key"] == "***"
