"""Settings: explicit values > environment > defaults, and no secret in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from massive_magic.errors import ConfigError
from massive_magic.settings import DEFAULT_MAX_SESSION_AGE, DEFAULT_URL, Settings

ENV = {
    "MASSIVE_METABASE_URL": "https://env.example.com/",
    "MASSIVE_METABASE_EMAIL": "env@example.com",
    "MASSIVE_METABASE_PASSWORD": "env-secret-pw",
    "MASSIVE_METABASE_API_KEY": "mb_envkey1234567",
    "MASSIVE_MAGIC_CACHE_DIR": "/tmp/env-cache",
}


def test_defaults_without_environment() -> None:
    settings = Settings.resolve(environ={})
    assert settings.url == DEFAULT_URL
    assert settings.username is None
    assert settings.password is None
    assert settings.api_key is None
    assert settings.max_session_age == DEFAULT_MAX_SESSION_AGE == 14 * 24 * 3600
    assert settings.cache_dir.name == "massive-magic"


def test_environment_fills_gaps() -> None:
    settings = Settings.resolve(environ=ENV)
    assert settings.url == "https://env.example.com"
    assert settings.username == "env@example.com"
    assert settings.password == "env-secret-pw"
    assert settings.api_key == "mb_envkey1234567"
    assert settings.cache_dir == Path("/tmp/env-cache")


def test_explicit_values_win_over_environment() -> None:
    settings = Settings.resolve(
        "http://127.0.0.1:9/",
        "me@example.com",
        "arg-pw",
        api_key="mb_argkey1234567",
        cache_dir="/tmp/arg-cache",
        timeout=(2, 30),
        environ=ENV,
    )
    assert settings.url == "http://127.0.0.1:9"
    assert settings.username == "me@example.com"
    assert settings.password == "arg-pw"
    assert settings.api_key == "mb_argkey1234567"
    assert settings.cache_dir == Path("/tmp/arg-cache")
    assert (settings.connect_timeout, settings.read_timeout) == (2, 30)


def test_single_timeout_is_the_read_timeout() -> None:
    settings = Settings.resolve(timeout=3, environ={})
    assert settings.read_timeout == 3
    assert settings.connect_timeout == 3


def test_repr_hides_secrets() -> None:
    text = repr(Settings.resolve(environ=ENV))
    assert "env-secret-pw" not in text
    assert "mb_envkey" not in text
    assert "env@example.com" in text


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"url": "massive.metabaseapp.com"}, "must start with https://"),
        ({"timeout": 0}, "Timeouts must be positive"),
        ({"max_session_age": -1}, "maximum session age"),
    ],
)
def test_invalid_settings_explain_themselves(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.resolve(environ={}, **kwargs)  # type: ignore[arg-type]


def test_max_session_age_from_environment() -> None:
    assert (
        Settings.resolve(environ={"MASSIVE_METABASE_MAX_SESSION_AGE": "3600"}).max_session_age
        == 3600
    )
    with pytest.raises(ConfigError, match="number of seconds"):
        Settings.resolve(environ={"MASSIVE_METABASE_MAX_SESSION_AGE": "two weeks"})
