"""The notebook's connection state: which client, which sandbox, which snapshot mode.

The plain class behind :class:`~massive_magic.magics.MassiveMagics`, in the manner
of IPython's autoreload (``ModuleReloader`` holds the logic, the ``Magics``
subclass is a thin shell). It reads the magics' settings through :class:`Options`
at every call, since ``%config`` may change them between cells, and resolves them
one way: magic option > traitlet > environment (``Settings.resolve``) > default.
The magics' reads go through it too: the current client, its progress bar, the time.

No IPython here: failures are :class:`~massive_magic.errors.MassiveError` (the
magics turn them into ``UsageError``), and the login's password prompt is an
argument (:func:`password_prompt` for ``%massive_login``). The HTTP stack and
pandas load on the first login, not at import.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .errors import AuthError, ConfigError, NextStep, Step
from .magic_text import NOT_LOGGED_IN, describe_logout, describe_snapshots, snapshot_words

if TYPE_CHECKING:
    from .client import Client
    from .settings import Settings

__all__ = ["NotebookLogin", "NotebookSession", "Options", "not_logged_in", "password_prompt"]


class Options(Protocol):
    """The settings the session reads (``MassiveMagics``' traitlets)."""

    @property
    def url(self) -> str | None: ...
    @property
    def user(self) -> str | None: ...
    @property
    def api_key_env(self) -> str | None: ...
    @property
    def cache_dir(self) -> str | None: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def progress(self) -> bool: ...
    @property
    def quiet(self) -> bool: ...
    @property
    def snapshots(self) -> str | None: ...
    @property
    def snapshot_mode(self) -> str | None: ...
    @property
    def snapshot_max_age(self) -> str | None: ...


@dataclass(frozen=True)
class NotebookLogin:
    """What :func:`massive_magic.picker` borrows from the notebook's magics."""

    client: Client | None
    namespace: MutableMapping[str, Any]
    set_next_input: Callable[[str], Any]


def password_prompt(message: str = "Metabase password: ") -> str:
    """Ask for the password with a hidden prompt; never from the magic line.

    Kernels without stdin (nbclient, papermill, Voila) raise IPython's
    ``StdinNotImplementedError``, a ``NotImplementedError``; that becomes an
    AuthError naming the variable to set instead.
    """
    import getpass

    try:
        return getpass.getpass(message)
    except NotImplementedError as exc:
        from .settings import ENV_PASSWORD

        raise AuthError(
            "No password: this kernel cannot prompt for one.",
            next_steps=(NextStep(Step.SET_PASSWORD, names=(ENV_PASSWORD,)),),
        ) from exc


def not_logged_in(message: str = "") -> str:
    """Password prompt for the implicit login of %massive_card: never asks, explains."""
    raise AuthError(NOT_LOGGED_IN)


class NotebookSession:
    """The client ``%massive_login`` made, the sandbox it started, and whether it replays.

    ``offline``: the client is a replay's; it never logged in, so leaving replay
    drops it (reading live needs a login).
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self.client: Client | None = None
        self.sandbox: Any = None  # massive_magic.sandbox server, when --sandbox started one
        self.offline = False

    def settings(
        self,
        url: str | None = None,
        user: str | None = None,
        api_key_env: str | None = None,
        allow_http: bool | None = None,
    ) -> Settings:
        """Magic option > traitlet > environment (Settings.resolve) > default."""
        from .settings import Settings  # platformdirs: loaded on first use, not at %load_ext

        opts = self.options
        var = api_key_env or opts.api_key_env
        api_key = None
        if var:  # the user named the variable: the one env read outside settings.py
            api_key = os.environ.get(var) or None
            if api_key is None:
                raise ConfigError(
                    f"{var} is not set. Put the API key in that environment variable."
                )
        return Settings.resolve(
            url or opts.url,
            user or opts.user,
            api_key=api_key,
            cache_dir=opts.cache_dir,
            timeout=opts.timeout,
            allow_http=allow_http,
            snapshots=opts.snapshots or None,
            snapshot_mode=opts.snapshot_mode or None,
            snapshot_max_age=opts.snapshot_max_age or None,
        )

    def snapshot_config(self) -> tuple[Any, str, Any]:
        """(directory, mode, max age): traitlet (or %massive_snapshots) > environment."""
        from .settings import resolve_snapshots

        opts = self.options
        return resolve_snapshots(
            opts.snapshots or None, opts.snapshot_mode or None, opts.snapshot_max_age or None
        )

    def replaying(self) -> bool:
        """Whether snapshots are replayed (then nothing logs in or reaches Metabase)."""
        return self.snapshot_config()[1] == "replay"

    def sync(self) -> Client | None:
        """The client with the current snapshot settings; a replay's client ends with replay."""
        where, mode, age = self.snapshot_config()
        if self.client is not None and self.offline and mode != "replay":
            self.replace(None)  # it never logged in: reading live needs a login
        if self.client is not None:
            self.client.use_snapshots(where, mode, age)
        return self.client

    def current(self) -> Client:
        """The logged-in client; else log in from env credentials or a cached session
        (in replay: a client that never logs in)."""
        client = self.sync()
        if client is not None:
            return client
        settings = self.settings()
        replay = settings.snapshot_mode == "replay"
        if not (settings.username or settings.api_key or replay):
            raise AuthError(NOT_LOGGED_IN)
        client = self._make_client(settings, not_logged_in)
        self._login(client)
        self.client, self.offline = client, replay
        return client

    def read_card(
        self,
        ref: Any,
        params: dict[str, Any] | None,
        *,
        output: str,
        limit: int | None = None,
        refresh: bool = False,
        quiet: bool = False,
    ) -> tuple[Any, Any, float]:
        """``%massive_card``'s read: (the result as ``output``, the DataFrame built, seconds).

        Polars frames have no metadata: the card's name is in the built DataFrame's.
        """
        from .outputs import output_kind  # pandas and pyarrow: loaded on the first read

        out = output_kind(output)  # no polars: refused before any request
        client = self._reading(quiet)
        started = time.perf_counter()
        built = client.card(ref, params, limit=limit, refresh=refresh, output=out.built.name)
        return out.finish(built), built, time.perf_counter() - started

    def read_dashboard(
        self,
        ref: Any,
        params: dict[str, Any] | None,
        *,
        output: str,
        max_workers: int,
        quiet: bool = False,
    ) -> tuple[Any, float]:
        """``%massive_dashboard``'s read: (every card's result, seconds)."""
        client = self._reading(quiet)
        started = time.perf_counter()
        result = client.dashboard(ref, params, max_workers=max_workers, output=output)
        return result, time.perf_counter() - started

    def login(
        self,
        prompt: Callable[[str], str],
        *,
        url: str | None = None,
        user: str | None = None,
        api_key_env: str | None = None,
        allow_http: bool = False,
        sandbox: bool = False,
        force: bool = False,
    ) -> Any:
        """``%massive_login``: a new client, logged in, replaces the old; its login info.

        ``sandbox``: the demo server (started here unless replaying) and its demo
        account, whatever credentials the environment holds.
        """
        replay = self.replaying()
        if sandbox:
            settings = self._sandbox_settings(replay)
        else:
            allow = True if allow_http else None  # else $MASSIVE_MAGIC_ALLOW_HTTP
            settings = self.settings(url, user, api_key_env, allow)
            if not replay:
                _require_user(settings)
        client = self._make_client(settings, prompt)
        info = self._login(client, force=force)
        self.replace(client)
        self.offline = replay
        return info

    def logout(self) -> str:
        """``%massive_logout``: end the session (in replay: send nothing); what to print."""
        client, offline = self.client, self.offline
        if client is None:
            return describe_logout(None, offline=False)
        client.logout()
        self.replace(None)
        return describe_logout(client.url, offline=offline)

    def choose_snapshots(self, words: Sequence[str], max_age: str | None) -> tuple[Any, Any, Any]:
        """``%massive_snapshots [MODE] [DIR] [--max-age AGE]``: the new (directory, mode,
        max age), checked before anything changes (a bad mode or age is refused)."""
        from .settings import resolve_snapshots

        opts = self.options
        now = (opts.snapshots, opts.snapshot_mode, opts.snapshot_max_age)
        chosen = snapshot_words(words, max_age, now)
        resolve_snapshots(*chosen)
        return chosen

    def snapshots_changed(self) -> str:
        """Apply new snapshot settings to the client; what ``%massive_snapshots`` prints."""
        from .snapshots import SnapshotStore

        ended = self.offline and self.client is not None
        self.sync()
        where, mode, max_age = self.snapshot_config()
        infos = SnapshotStore(where).list() if where else []
        return describe_snapshots(mode, where, infos, max_age, ended=ended and not self.client)

    def replace(self, client: Client | None) -> None:
        """Make ``client`` the notebook's; the one it replaces is closed."""
        if self.client is not None and self.client is not client:
            self.client.close()
        self.client = client

    def close(self) -> None:
        """Close the client and stop the sandbox (``%unload_ext``)."""
        self.replace(None)
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def _reading(self, quiet: bool) -> Client:
        """The current client, with a progress bar unless the notebook asked for quiet."""
        client = self.current()
        client.progress = self.options.progress and not (self.options.quiet or quiet)
        return client

    def _sandbox_settings(self, replay: bool) -> Settings:
        from .settings import SANDBOX_SNAPSHOT_SERVER

        srv = self.sandbox if replay else self._start_sandbox()  # replay: none started
        settings = self.settings(srv.url if srv else "http://localhost")
        return settings.with_changes(
            username=srv.username if srv else None,
            password=srv.password if srv else None,
            api_key=None,
            snapshot_server=SANDBOX_SNAPSHOT_SERVER,  # its port changes, its data not
        )

    def _start_sandbox(self) -> Any:
        if self.sandbox is None:
            from . import sandbox

            self.sandbox = sandbox.start()
        return self.sandbox

    def _make_client(self, settings: Settings, prompt: Callable[[str], str]) -> Client:
        from .client import Client

        # Exactly the settings resolved here: Client() would re-read the environment
        # for what is None (an API key would beat the sandbox's demo password).
        opts = self.options
        return Client.from_settings(
            settings, progress=opts.progress and not opts.quiet, password_prompt=prompt
        )

    def _login(self, client: Client, force: bool = False) -> Any:
        """``client.login()``; a client that could not log in is closed, not kept."""
        try:
            return client.login(force=force)
        except BaseException:
            client.close()
            raise


def _require_user(settings: Settings) -> None:
    """A login needs an e-mail or an API key: say how to give one before trying."""
    if settings.username or settings.api_key:
        return
    from .settings import ENV_API_KEY, ENV_EMAIL

    raise AuthError(
        f"No Metabase user name for {settings.url}.",
        next_steps=(
            NextStep(Step.SET_USER, names=(ENV_EMAIL,)),
            NextStep(Step.USE_API_KEY, names=(ENV_API_KEY,)),
        ),
    )
