"""Settings: explicit values > environment > defaults, and no secret in a repr."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from massive_magic.errors import ConfigError, NextStep, Step
from massive_magic.settings import DEFAULT_MAX_SESSION_AGE, DEFAULT_URL, ENV_ALLOW_HTTP, Settings

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


# -- the server URL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000",
        "http://LOCALHOST",
        "http://127.0.0.1:8080/",
        "http://127.5.6.7",
        "http://[::1]:3000",
        "https://metabase.example.com",
        "https://example.com/metabase",  # served under a path prefix
    ],
)
def test_urls_that_need_no_opt_in(url: str) -> None:
    assert Settings.resolve(url, environ={}).url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://metabase.example.com",
        "http://10.0.0.5:3000",
        "http://localhost.example.com",  # a name that merely starts like one
        "http://127.0.0.1.nip.io",  # resolves to loopback, but is not decided by DNS
        "http://[::2]",
    ],
)
def test_plain_http_to_another_machine_needs_an_opt_in(url: str) -> None:
    with pytest.raises(ConfigError, match="clear text") as caught:
        Settings.resolve(url, environ={})
    assert caught.value.next_steps == (NextStep(Step.USE_HTTPS),)
    assert Settings.resolve(url, allow_http=True, environ={}).allow_http
    assert Settings.resolve(url, environ={ENV_ALLOW_HTTP: "1"}).allow_http
    with pytest.raises(ConfigError):
        Settings.resolve(url, allow_http=False, environ={ENV_ALLOW_HTTP: "1"})


@pytest.mark.parametrize(
    "url",
    ["https://ana:s3cr3t-pw@metabase.example.com", "http://ana:s3cr3t-pw@127.0.0.1:3000"],
)
def test_credentials_in_the_url_are_refused_unseen(url: str) -> None:
    with pytest.raises(ConfigError, match="user name or password") as caught:
        Settings.resolve(url, environ={})
    assert "s3cr3t-pw" not in str(caught.value) and "s3cr3t-pw" not in repr(caught.value)


@pytest.mark.parametrize(
    ("url", "server"),
    [
        ("https://x.example.com/question/484", "https://x.example.com"),
        ("https://x.example.com/question/484-payouts?a=1", "https://x.example.com"),
        ("https://x.example.com/mb/dashboard/12", "https://x.example.com/mb"),
        ("https://x.example.com/?search=x", "https://x.example.com"),
        ("https://x.example.com/api/card/484", "https://x.example.com"),
    ],
)
def test_a_card_url_is_not_a_server_url(url: str, server: str) -> None:
    with pytest.raises(ConfigError, match="looks like the address of a card") as caught:
        Settings.resolve(url, environ={})
    assert f"the server's URL would be {server} " in caught.value.message


# -- numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": math.nan},
        {"timeout": math.inf},
        {"timeout": -1.0},
        {"timeout": (math.nan, 30)},
        {"timeout": (5, math.inf)},
        {"max_session_age": math.nan},
        {"max_session_age": math.inf},
    ],
)
def test_non_finite_numbers_are_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="positive and finite"):
        Settings.resolve(environ={}, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["nan", "inf", "-5"])
def test_non_finite_max_session_age_from_the_environment(value: str) -> None:
    with pytest.raises(ConfigError, match="positive and finite"):
        Settings.resolve(environ={"MASSIVE_METABASE_MAX_SESSION_AGE": value})


# -- whose password ----------------------------------------------------------------------------


def test_the_env_password_is_only_for_the_env_user() -> None:
    for user in (None, "env@example.com", "ENV@Example.com"):
        settings = Settings.resolve(username=user, environ=ENV)
        assert settings.password == "env-secret-pw"
        assert not settings.env_password_withheld
    other = Settings.resolve(username="other@example.com", environ=ENV)
    assert other.password is None and other.env_password_withheld
    assert other.username == "other@example.com"
    explicit = Settings.resolve(username="other@example.com", password="pw", environ=ENV)
    assert explicit.password == "pw" and not explicit.env_password_withheld


def test_without_an_env_user_the_env_password_serves_anyone() -> None:
    environ = {"MASSIVE_METABASE_PASSWORD": "env-secret-pw"}
    assert Settings.resolve(username="anyone@example.com", environ=environ).password == (
        "env-secret-pw"
    )
