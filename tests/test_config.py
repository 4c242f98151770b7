"""Settings precedence (arguments, environment, .env, defaults) and secret hygiene."""

import pickle

import pytest

from stemlab.config import Secret, Settings, env_name, read_dotenv, redact
from stemlab.errors import ConfigError
from stemlab.providers import REGISTRY
from stemlab.providers.cqtai import Cqtai


def test_arguments_beat_environment_beat_dotenv_beat_defaults(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("STEMLAB_CQTAI_URL=https://dotenv.example\nSTEMLAB_POLL_INTERVAL=7\n"
                      "export CQTAI_API_KEY='sk-from-dotenv'  \n# STEMLAB_JOB_TIMEOUT=1\n")
    env = {"STEMLAB_POLL_INTERVAL": "3", "STEMLAB_CACHE_DIR": str(tmp_path / "c")}
    s = Settings.resolve(environ=env, dotenv=dotenv, poll_interval=None, apiframe_url="https://arg.example/")
    assert s.cqtai_url == "https://dotenv.example"          # .env
    assert s.poll_interval == 3.0                           # environment beats .env
    assert s.apiframe_url == "https://arg.example"          # argument, trailing slash dropped
    assert s.cqtai_api_key.reveal() == "sk-from-dotenv"
    assert s.cache_dir == tmp_path / "c"
    assert s.job_timeout == 1800.0                          # default: the commented line is ignored
    assert s.suno_cdn_url is None and Cqtai.urls["suno_cdn_url"] == "https://cdn1.suno.ai"  # the provider's default
    assert Settings.resolve(environ={}, dotenv=None).poll_interval == 5.0


def test_every_provider_setting_has_its_environment_variable():
    for kind in REGISTRY.values():
        for name in kind.settings_names():
            variable = env_name(name)
            value = "sk-x" if name.endswith("_api_key") else "https://example.test"
            found = Settings.resolve(environ={variable: value}, dotenv=None).option(name)
            assert (found.reveal() if name.endswith("_api_key") else found) == value, variable
    assert env_name("apiframe_api_key") == "APIFRAME_API_KEY" and env_name("cqtai_url") == "STEMLAB_CQTAI_URL"


def test_of_resolves_once_and_passes_given_settings_through(tmp_path):
    given = Settings(cache_dir=tmp_path / "a")
    assert Settings.of(given) is not None and Settings.of(given).cache_dir == tmp_path / "a"
    assert Settings.of(given, cache_dir=tmp_path / "b").cache_dir == tmp_path / "b"
    (tmp_path / ".env").write_text("STEMLAB_CACHE_DIR=/from/dotenv\n")
    assert Settings.of(given).cache_dir == tmp_path / "a"  # a given Settings never reads the environment


def test_bad_numbers_and_unknown_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="STEMLAB_POLL_INTERVAL must be a number"):
        Settings.resolve(environ={"STEMLAB_POLL_INTERVAL": "soon"}, dotenv=None)
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.resolve(dotenv=None, colour="blue")


def test_missing_key_error_names_the_variable():
    with pytest.raises(ConfigError, match="APIFRAME_API_KEY"):
        Settings.resolve(environ={}, dotenv=None).key("apiframe_api_key")


def test_secrets_never_print_or_pickle():
    s = Settings.resolve(environ={}, dotenv=None, cqtai_api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s.cqtai_api_key)
    assert "sk-very-secret" not in f"{s.cqtai_api_key!r} {s.cqtai_api_key}"
    with pytest.raises(TypeError):
        pickle.dumps(s.cqtai_api_key)
    assert s.secrets() == ["sk-very-secret"]


def test_redact_masks_values_and_auth_fields():
    raw = {"data": {"msg": "bad key sk-1"}, "Authorization": "Bearer sk-1", "list": ["sk-1", 3]}
    assert redact(raw, ["sk-1"]) == {"data": {"msg": "bad key ********"}, "Authorization": "********",
                                     "list": ["********", 3]}


def test_read_dotenv_missing_file_is_empty(tmp_path):
    assert read_dotenv(tmp_path / "nope") == {}
    assert Secret("x") == Secret("x") and not Secret("")
