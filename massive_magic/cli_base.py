"""What every ``massive-magic`` subcommand shares: exit codes, error lines, the connection.

A subcommand module (``cli_export``, ...) has a ``register(commands)`` that adds
its parsers to ``cli``'s subparsers, each with ``set_defaults(run=function)``;
``run(args)`` returns the exit code, or raises. ``cli.main`` turns what it raises
into one line on stderr (:func:`error_line`, next steps in :data:`CLI_WORDS`)
and an exit code (:func:`exit_code`; the table is :data:`EXIT_CODES_HELP`, which
``--help`` shows and the README repeats).

Light on purpose: ``massive-magic --help`` imports no HTTP stack and no pandas;
:func:`client_for` imports the client when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from .errors import (
    AccessDenied,
    AuthError,
    BadCardRef,
    ConfigError,
    IncompleteResultWarning,
    NotFound,
    ParameterError,
    QueryFailed,
    ResponseError,
    Step,
    render,
)
from .settings import ENV_ALLOW_HTTP, ENV_API_KEY, ENV_EMAIL, ENV_PASSWORD, ENV_URL

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "CLI_WORDS",
    "EXIT_AUTH",
    "EXIT_CODES_HELP",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_QUERY",
    "EXIT_USAGE",
    "Parser",
    "add_connection_options",
    "client_for",
    "error_line",
    "exit_code",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_QUERY = 5
EXIT_INTERRUPTED = 130

#: The table of exit codes, as ``--help`` shows it.
EXIT_CODES_HELP = """\
exit codes:
    0  done
    1  another failure (e.g. the file could not be written)
    2  usage: bad arguments, a bad parameter or setting
    3  authentication: credentials refused, locked out, or none given
    4  the card was not found, or you may not read it
    5  the query failed, or the result was incomplete (a body cut short, the
       export cap)
  130  interrupted (Ctrl-C)"""

#: What to do next, in a shell's words: commands, their options and environment variables.
CLI_WORDS: Mapping[Step, str] = {
    Step.LIST_CARDS: "Run massive-magic cards to see the cards you can read.",
    Step.SHOW_PARAMETERS: "massive-magic cards shows its parameters (card {ref}).",
    Step.GIVE_PARAMETER: "Give {names} a value with -p NAME=VALUE.",
    Step.REFRESH: "Run it again with --refresh.",
    Step.READ_DASHBOARD: "The command line reads cards: read the whole dashboard ({ref}) "
    "from Python or a notebook instead.",
    Step.READ_CARD: "Export it as a card: massive-magic export {ref}.",
    Step.LOGIN: "Log in anew with massive-magic login --force.",
    Step.SET_USER: "Pass --user EMAIL, or set {names} "
    f"(e.g. export {ENV_EMAIL}=you@partner.com).",
    Step.SET_PASSWORD: "Set {names} in the environment, or run massive-magic login on a terminal.",
    Step.USE_API_KEY: f"Or set {ENV_API_KEY} to use an API key.",
    Step.RAISE_TIMEOUT: "Raise it with --timeout SECONDS.",
    Step.WAIT_THEN_LOGIN: "Then run massive-magic login once; every attempt extends the lock.",
    Step.USE_HTTPS: f"Use an https:// URL, or pass --allow-http (or set {ENV_ALLOW_HTTP}=1) "
    "if you must.",
    Step.SET_API_KEY: "Set a current API key in {names}.",
    Step.SET_CACHE_DIR: "Set {names} to a directory only you can write.",
    Step.CONNECT_SERVER: f"Pass --url {{names}} (or set {ENV_URL}) to read from that server.",
    Step.INSTALL_EXTRA: "Install it with pip install 'massive-magic[{names}]'.",
    Step.RECORD_SNAPSHOT: "Record it while online: massive-magic snapshots refresh NOTEBOOK.",
    Step.ALLOW_OLDER: "Or allow older ones with MASSIVE_MAGIC_SNAPSHOT_MAX_AGE (e.g. 30d).",
    Step.LEAVE_REPLAY: "Set MASSIVE_MAGIC_SNAPSHOT_MODE=auto (or off) to read from Metabase.",
    Step.SET_SNAPSHOT_DIR: "Set {names} (or pass --dir DIR).",
}


def error_line(exc: BaseException) -> str:
    """``massive-magic: <message> <next steps>`` — one line for stderr."""
    text = " ".join(render(exc, CLI_WORDS).split())
    return f"massive-magic: {text}"


def exit_code(exc: BaseException) -> int:
    """The documented exit code for an expected failure (see the module docstring)."""
    if isinstance(exc, (ConfigError, ParameterError, BadCardRef)):
        return EXIT_USAGE
    if isinstance(exc, AuthError):
        return EXIT_AUTH
    if isinstance(exc, (NotFound, AccessDenied)):
        return EXIT_NOT_FOUND
    if isinstance(exc, (QueryFailed, ResponseError, IncompleteResultWarning)):
        return EXIT_QUERY
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILED


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``massive-magic export: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}. Run {self.prog} --help for usage.", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--user``, ``--timeout`` and ``--allow-http``; the rest is environment."""
    group = parser.add_argument_group(
        "connection",
        f"Defaults come from the environment, as for the magics: {ENV_URL},\n"
        f"{ENV_EMAIL}, {ENV_PASSWORD} (else a hidden prompt on a\n"
        f"terminal) or {ENV_API_KEY} (no login at all).",
    )
    group.add_argument("--url", help=f"the Metabase server (default: ${ENV_URL}, then Massive's)")
    group.add_argument("--user", metavar="EMAIL", help=f"login e-mail (default: ${ENV_EMAIL})")
    group.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up on a read after this long (default: 1200)",
    )
    group.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain http:// to another machine (the password crosses in clear text)",
    )


def client_for(args: argparse.Namespace, *, progress: bool = False) -> Client:
    """A Client from the connection options, the environment filling the gaps.

    No password prompt is given: the session asks with a hidden prompt when
    stdin is a terminal, and says which variable to set when it is not.
    """
    from .client import Client

    return Client(
        args.url,
        args.user,
        timeout=args.timeout,
        allow_http=True if args.allow_http else None,
        progress=progress,
    )
