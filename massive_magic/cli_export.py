"""The subcommands that talk to Metabase: ``export``, ``cards``, ``login``, ``logout``.

    massive-magic export REF [-p NAME=VALUE]... [--limit N] [-o PATH] [--format F] [-q]
    massive-magic cards [--json]
    massive-magic login [--url URL] [--user EMAIL] [--force]
    massive-magic logout

``export`` reads the whole card, then writes it (:mod:`~massive_magic.export`):
nothing is written before the read is complete and checked, and a file is
replaced atomically. Parameters are read as in a ``%%massive_card`` cell body
(:func:`~massive_magic.cellparams.parse_value`); a name given again adds values
to a list. A result at Metabase's export cap is an error here (exit 5), not a
warning: a script cannot look at a warning.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .cellparams import parse_value
from .cli_base import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    add_connection_options,
    client_for,
)
from .errors import ConfigError, ParameterError
from .magic_text import describe_login

__all__ = ["parse_params", "register", "run_cards", "run_export", "run_login", "run_logout"]

_FORMATS = ("parquet", "csv", "json", "arrow")  # export.FORMATS, without importing pyarrow
_BINARY = ("parquet", "arrow")

_EXPORT_HELP = """\
Read a card completely and write it: to standard output as CSV (-o -, the default), or
to a file in the format its extension names: .parquet, .csv, .json (JSON lines: one
object per row), .arrow or .feather (Arrow IPC). --format overrides the extension.

A file is replaced only when the whole card was read and written; a failure leaves
no new file and an existing one untouched. Parquet keeps the pandas dtypes and the
provenance (pandas.read_parquet gives back the frame Client.card returns); an Arrow
file keeps the Arrow table, provenance in its schema metadata. CSV cannot tell an
empty string from a null (a note on stderr says when that matters).

parameters (-p NAME=VALUE), read as in a %%massive_card cell body:
  -p platform=Android                      a bare string
  -p 'date=["2024-01-01","2024-01-31"]'    a JSON literal (list, number, "string", ...)
  -p country=DE -p country=GB              a name again: a list, as -p 'country=["DE","GB"]'
  -p platform=null                         None, none, null, NULL: no filter"""


def register(commands: Any) -> None:
    """Add ``export``, ``cards``, ``login`` and ``logout`` to ``cli``'s subparsers."""
    export = commands.add_parser(
        "export",
        help="write a card to a file or standard output (parquet, csv, json, arrow)",
        description=_EXPORT_HELP,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("ref", metavar="REF", help="card id, 'id-slug' or the card's URL")
    export.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter value, by slug or display name; repeatable",
    )
    export.add_argument("--limit", type=_count, metavar="N", help="read at most N rows")
    export.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="PATH",
        help="the file to write; - (the default) writes to standard output",
    )
    export.add_argument(
        "--format", choices=_FORMATS, help="the file format (default: from PATH; csv for -)"
    )
    export.add_argument(
        "--refresh",
        action="store_true",
        help="re-read the card's parameters and bypass Metabase's result cache",
    )
    export.add_argument(
        "-q", "--quiet", action="store_true", help="no progress, notes or summary on stderr"
    )
    add_connection_options(export)
    export.set_defaults(run=run_export)

    cards = commands.add_parser(
        "cards",
        help="list the cards you can read",
        description="The cards you can read: id, name, collection and parameters.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cards.add_argument(
        "--json",
        action="store_true",
        help="one JSON array of objects with id, name, collection, parameters",
    )
    add_connection_options(cards)
    cards.set_defaults(run=run_cards)

    login = commands.add_parser(
        "login",
        help="log in and cache the session",
        description="Log in (a hidden prompt asks for the password on a terminal) and cache "
        "the session for the other commands; a cached session is reused.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    login.add_argument(
        "--force", action="store_true", help="log in anew even if a session is cached"
    )
    add_connection_options(login)
    login.set_defaults(run=run_login)

    logout = commands.add_parser(
        "logout",
        help="end the session and forget it",
        description="End the cached session on the server and remove it from the cache.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_options(logout)
    logout.set_defaults(run=run_logout)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of rows (0 or more)")
    return value


# -- parameters ------------------------------------------------------------------------------


class _NoVariables(Mapping[str, Any]):
    """The namespace of a command line: ``{name}`` has nothing to name."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __getitem__(self, key: str) -> Any:
        raise ParameterError(
            f"{self.where}: {{{key}}} would name a notebook variable, and a command line has "
            "none. Write the value itself (the shell expands $VARIABLES), or double the braces "
            "for literal ones."
        )

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def parse_params(items: list[str]) -> dict[str, Any]:
    """``-p NAME=VALUE`` options -> parameters; a name given again adds to a list.

    Names match without regard to case, as the card's parameters do.
    """
    params: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParameterError(f"-p {item!r} is not NAME=VALUE (e.g. -p country=DE).")
        where = f"-p {name}"
        value = parse_value(raw, _NoVariables(where), where=where)
        key = spelled.setdefault(name.casefold(), name)
        if key in params:
            params[key] = _as_list(params[key]) + _as_list(value)
        else:
            params[key] = value
    return params


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# -- export ----------------------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    """Read the card completely, then write it; usage errors come before any request."""
    from .export import READ_AS, format_of, text_columns_with_gaps, write_file, write_stream

    target = None if args.output == "-" else Path(args.output)
    if target is not None:
        _check_target(target)
    fmt = args.format or ("csv" if target is None else format_of(target))
    if fmt is None:
        raise ConfigError(
            f"Cannot tell the format of {target} from its extension. Name the file "
            ".parquet, .csv, .json, .arrow or .feather, or give --format parquet|csv|json|arrow."
        )
    if target is None and fmt in _BINARY and sys.stdout.isatty():
        raise ConfigError(
            f"{fmt} is binary and standard output is a terminal. Give -o PATH, "
            "or redirect standard output to a file or a pipe."
        )
    params = parse_params(args.param)
    started = time.perf_counter()
    with client_for(args, progress=not args.quiet) as client:
        result = client.card(
            args.ref, params or None, limit=args.limit, refresh=args.refresh, output=READ_AS[fmt]
        )
    if fmt == "csv" and not args.quiet:
        gaps = text_columns_with_gaps(result)
        if gaps:
            print(
                "massive-magic: note: CSV cannot tell an empty string from a null; "
                f"{_names(gaps)} hold one or both. --format parquet or arrow keeps them apart.",
                file=sys.stderr,
            )
    if target is None:
        write_stream(result, fmt, sys.stdout.buffer)
    else:
        try:
            write_file(result, fmt, target)
        except OSError as exc:
            print(f"massive-magic: could not write {target}: {_reason(exc)}", file=sys.stderr)
            return EXIT_FAILED
    if not args.quiet:
        print(_summary(result, target, time.perf_counter() - started), file=sys.stderr)
    return EXIT_OK


def _check_target(target: Path) -> None:
    """Refuse, before any request, a path that cannot become the file."""
    if target.is_dir():
        raise ConfigError(f"{target} is a directory. Give -o a file name.")
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(
            f"The directory {parent} does not exist. Create it, or give -o another path."
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"You may not write in {parent}. Give -o another path.")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _names(columns: list[str]) -> str:
    listed = ", ".join(repr(name) for name in columns)
    return f"column {listed}" if len(columns) == 1 else f"columns {listed}"


def _provenance(result: Any) -> dict[str, Any]:
    attrs = getattr(result, "attrs", None)
    if isinstance(attrs, dict):
        return dict(attrs.get("massive") or {})
    from .frames import arrow_attrs

    return dict(arrow_attrs(result).get("massive") or {})


def _summary(result: Any, target: Path | None, seconds: float) -> str:
    """``Wrote 11 rows x 14 columns of 'All column types' (card 501) to x.csv in 0.42 s.``"""
    meta = _provenance(result)
    rows, columns = result.shape
    name = f"card {meta.get('card_id')}"
    if meta.get("name"):
        name = f"{meta['name']!r} ({name})"
    where = "standard output" if target is None else str(target)
    return f"Wrote {rows:,} rows x {columns} columns of {name} to {where} in {seconds:.2f} s."


# -- cards, login, logout --------------------------------------------------------------------


def run_cards(args: argparse.Namespace) -> int:
    """The readable cards as an aligned table, or one JSON array (``--json``)."""
    from .metadata import card_summary, list_cards

    with client_for(args) as client:
        found = list_cards(client.session)
    cards = sorted(
        (
            {key: card_summary(card)[key] for key in ("id", "name", "collection", "parameters")}
            for card in found
        ),
        key=lambda card: (card["id"] is None, card["id"] or 0),
    )
    if args.json:
        print(json.dumps(cards, ensure_ascii=False, default=str))
        return EXIT_OK
    rows = [("ID", "NAME", "COLLECTION", "PARAMETERS")]
    for card in cards:
        parameters = ", ".join(
            p["slug"] + ("*" if p.get("required") else "") for p in card["parameters"]
        )
        rows.append((str(card["id"]), card["name"] or "", card["collection"] or "", parameters))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[3]]).rstrip())
    return EXIT_OK


def run_login(args: argparse.Namespace) -> int:
    """Log in (or reuse the cached session) and say who, where and until when."""
    with client_for(args) as client:
        info = client.login(force=args.force)
    print(describe_login(info))  # the words %massive_login prints
    return EXIT_OK


def run_logout(args: argparse.Namespace) -> int:
    """End the session on the server and forget it here."""
    with client_for(args) as client:
        client.logout()
        print(f"Logged out of {client.url}.")
    return EXIT_OK
