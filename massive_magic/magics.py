"""IPython magics: a thin shell that parses, calls the Client, translates errors and publishes.

``%massive_login``, ``%massive_card``/``%%massive_card``, ``%massive_cards``, ``%massive_info``,
``%massive_dashboard``/``%%massive_dashboard``, ``%massive_logout``, ``%massive_snapshots``;
Tab completion is :mod:`~massive_magic.magic_completion`. As in IPython's ``autoreload``, the
state and its logic (client, sandbox, snapshot mode) are a plain class,
:class:`~massive_magic.notebook_session.NotebookSession`, held by the registered instance.

Expected failures become one-line ``UsageError`` (the cell still fails, so Run All and
papermill stop): the library's message, then its next steps in :data:`MAGIC_WORDS`; an
interrupt is :data:`INTERRUPTED`. While the extension is loaded a
:class:`~massive_magic.errors.MassiveWarning` prints as its message alone. Settings are
traitlets (``%config MassiveMagics.url = "..."``, ``c.MassiveMagics.user`` in
``ipython_config.py``). Only IPython, traitlets and light modules load at ``%load_ext``.
"""

from __future__ import annotations

import keyword
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, CaselessStrEnum, Float, Integer, Unicode

from .cellparams import expand_vars, parse_cell
from .errors import MassiveError, render
from .magic_completion import MagicCompleter
from .magic_text import (
    AS_HELP,
    INTERRUPTED,
    MAGIC_WORDS,
    OUTPUTS,
    PlainWarnings,
    describe_dashboard,
    describe_login,
    frame_summary,
)
from .notebook_session import NotebookLogin, NotebookSession, password_prompt

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .client import Client

__all__ = [
    "MassiveMagics",
    "NotebookLogin",
    "load_ipython_extension",
    "notebook_login",
    "unload_ipython_extension",
]


def _optional(trait: Any, help: str) -> Any:
    """A ``%config``-able setting that may be None (then the environment decides)."""
    return trait(None, allow_none=True, help=help).tag(config=True)


@magics_class
class MassiveMagics(Magics):
    """Read Massive's Metabase cards into pandas DataFrames."""

    url = _optional(Unicode, "Metabase URL (default: $MASSIVE_METABASE_URL, then Massive's).")
    user = _optional(Unicode, "Login e-mail (default: $MASSIVE_METABASE_EMAIL).")
    api_key_env = _optional(
        Unicode,
        "Name of an environment variable holding a Metabase API key to use instead of a "
        "password (default: $MASSIVE_METABASE_API_KEY is used when set).",
    )
    cache_dir = _optional(Unicode, "Session cache directory (default: $MASSIVE_MAGIC_CACHE_DIR).")
    timeout = _optional(Float, "Read timeout for a card query, in seconds.")
    progress = Bool(True, help="Show a progress bar while rows download.").tag(config=True)
    quiet = Bool(False, help="No progress bar and no summary lines (like -q on every call).").tag(
        config=True
    )
    max_workers = Integer(4, help="Cards of a dashboard read in parallel.").tag(config=True)
    snapshots = _optional(Unicode, "Snapshot directory (default: $MASSIVE_MAGIC_SNAPSHOTS).")
    snapshot_mode = _optional(
        Unicode,
        "record, replay, auto or off (default: $MASSIVE_MAGIC_SNAPSHOT_MODE, else auto "
        "when there is a snapshot directory).",
    )
    snapshot_max_age = _optional(Unicode, "Oldest snapshot replayed, e.g. 7d (default: any age).")
    output = CaselessStrEnum(
        OUTPUTS,
        default_value="pandas",
        help="What %massive_card and %massive_dashboard give (like --as on every call): a "
        "pandas DataFrame, a pyarrow Table or a polars DataFrame (massive-magic[polars]).",
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        #: The client, the sandbox and the snapshot mode: the logic behind these magics.
        self.session = NotebookSession(self)
        self.plain_warnings: PlainWarnings | None = None  # installed by load_ipython_extension
        #: Tab completion; it completes only for the client %massive_login made.
        self.completer = MagicCompleter(lambda: self.client)
        # IPython 9's Magics joins shell.configurables itself (so %config finds it); 8.x not.
        configurables: list[Any] = self.shell.configurables if self.shell is not None else []
        if self.shell is not None and self not in configurables:
            configurables.append(self)

    @property
    def client(self) -> Client | None:
        """The client ``%massive_login`` made (or the implicit login's), else None."""
        return self.session.client

    @client.setter
    def client(self, client: Client | None) -> None:
        self.session.client = client

    @property
    def sandbox(self) -> Any:
        """The demo server ``--sandbox`` started, else None."""
        return self.session.sandbox

    # -- plumbing (not magics) -------------------------------------------------

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Expected failures -> one-line UsageError; anything else keeps its traceback.

        The library's next steps are worded for the notebook (:data:`MAGIC_WORDS`).
        An interrupt is expected too: IPython would print the whole stack of the
        read it stopped; a UsageError is one line and still fails the cell, so Run
        All stops as it would have.
        """
        try:
            yield
        except MassiveError as exc:
            raise UsageError(render(exc, MAGIC_WORDS)) from exc
        except KeyboardInterrupt as exc:
            raise UsageError(INTERRUPTED) from exc

    def _current_client(self) -> Client:
        """The notebook's client, logging in from the environment if need be."""
        with self._translate():
            return self.session.current()

    def _inputs(self, args: Any, cell: str | None, what: str) -> tuple[Any, dict[str, Any] | None]:
        """The reference (``{var}`` expanded) and the cell's parameters; checks ``-o``."""
        out = args.output
        if out and not (out.isidentifier() and not keyword.iskeyword(out)):
            raise UsageError(f"-o {out!r}: give a Python variable name, e.g. -o df.")
        ns = self.shell.user_ns if self.shell is not None else {}
        with self._translate():
            return expand_vars(args.ref, ns, where=what), (parse_cell(cell, ns) if cell else None)

    def _store(self, args: Any, value: Any) -> bool:
        """``-o VAR``: put ``value`` in the notebook; True when a summary should follow."""
        if self.shell is not None:
            self.shell.user_ns[args.output] = value
        return not (args.quiet or self.quiet)

    def close(self) -> None:
        """Close the client, stop the sandbox, restore warnings' format (``%unload_ext``)."""
        if self.plain_warnings is not None:
            self.plain_warnings.remove()
            self.plain_warnings = None
        if self.shell is not None:
            self.completer.remove(self.shell)
        self.session.close()

    # -- magics ----------------------------------------------------------------

    @magic_arguments()
    @argument("--url", help="Metabase URL (default: %%config MassiveMagics.url, then env).")
    @argument("--user", metavar="EMAIL", help="Login e-mail.")
    @argument("--api-key-env", metavar="VAR", help="Environment variable holding an API key.")
    @argument("--sandbox", action="store_true", help="Start the demo server and log in to it.")
    @argument("--force", action="store_true", help="Log in anew even if a session is cached.")
    @argument(
        "--allow-http",
        action="store_true",
        help="Allow plain http:// to another machine (the password crosses in clear text).",
    )
    @no_var_expand
    @line_magic
    def massive_login(self, line: str) -> None:
        """Log in to Massive's Metabase (a cached session is reused; no password on this line).

        The password comes from $MASSIVE_METABASE_PASSWORD or a hidden prompt, so it
        never lands in the notebook or in IPython's history. Sessions are cached on
        disk for their whole lifetime (14 days by default), across kernels.

        Prints one line: who is logged in where, and until when the session holds.

        Examples::

            %massive_login --user ana@partner.com
            %massive_login --sandbox        # a local demo server, no account needed
            %massive_login --api-key-env TEAM_METABASE_KEY
            %config MassiveMagics.user = "ana@partner.com"   # then just %massive_login
        """
        args = parse_argstring(self.massive_login, line)
        with self._translate():
            info = self.session.login(
                password_prompt,
                url=args.url,
                user=args.user,
                api_key_env=args.api_key_env,
                allow_http=args.allow_http,
                sandbox=args.sandbox,
                force=args.force,
            )
        print(describe_login(info))

    @magic_arguments()
    @argument("words", nargs="*", metavar="[MODE] [DIR]", help="record, replay, auto or off; "
              "the snapshot directory ({var} takes it from Python).")  # fmt: skip
    @argument("--max-age", metavar="AGE", help="Oldest snapshot replayed (7d, 12h); 'none': any.")
    @no_var_expand
    @line_magic
    def massive_snapshots(self, line: str) -> None:
        """Record card reads to a directory, or replay them from it without Metabase.

        Modes: ``record`` (live, every card read saved), ``replay`` (never contacts
        Metabase, no login needed), ``auto`` (a matching snapshot, else live and
        saved; the default with a directory), ``off``. Without arguments: the mode,
        the directory, how many snapshots it holds, the oldest and the newest. Name
        only the directory in a notebook: ``MASSIVE_MAGIC_SNAPSHOT_MODE=replay``
        then replays it for a colleague.

        Examples::

            %massive_snapshots snapshots/            # record or replay beside the notebook
            %massive_snapshots replay --max-age 7d   # nothing older than a week
            %massive_snapshots                       # what is there
        """
        args = parse_argstring(self.massive_snapshots, line)
        ns = self.shell.user_ns if self.shell is not None else {}
        with self._translate():
            words = [str(expand_vars(w, ns, where="Snapshot directory")) for w in args.words]
            chosen = self.session.choose_snapshots(words, args.max_age)
            self.snapshots, self.snapshot_mode, self.snapshot_max_age = chosen
            print(self.session.snapshots_changed())

    @magic_arguments()
    @no_var_expand
    @line_magic
    def massive_logout(self, line: str) -> None:
        """End the Metabase session and forget it from the cache.

        Example::

            %massive_logout
        """
        parse_argstring(self.massive_logout, line)  # takes no arguments: refuse strays
        with self._translate():
            print(self.session.logout())  # in replay: sends nothing

    @magic_arguments()
    @argument("ref", help="Card id, 'id-slug' or the card's URL; {var} takes it from Python.")
    @argument("-o", "--output", metavar="VAR", help="Store the DataFrame in VAR; print a summary.")
    @argument("--limit", type=int, metavar="N", help="Read at most N rows.")
    @argument("--refresh", action="store_true", help="Ignore Metabase's cached result.")
    @argument("--as", dest="as_kind", choices=OUTPUTS, help=AS_HELP)
    @argument("-q", "--quiet", action="store_true", help="No progress bar, no summary line.")
    @no_var_expand
    @line_cell_magic
    def massive_card(self, line: str, cell: str | None = None) -> Any:
        """Read a Metabase card into a pandas DataFrame.

        Without -o the DataFrame is the cell's result; with -o VAR it is stored in
        VAR and one summary line is printed (in a notebook the card's name links to
        it in Metabase, with the parameters sent). A card URL copied from Metabase
        brings its filters (``?country=DE&country=GB``); the cell body's win.
        As a cell magic, the body holds the card's parameters, one ``name = value``
        per line: JSON literals or bare strings, ``#`` comments, and ``{var}`` for a
        notebook variable (the object itself when it is the whole value, formatted
        in otherwise). Tab completes the reference (an id, or any word of the
        card's name) and, in the body, parameter names and the values Metabase lists.

        Examples::

            %massive_card 484
            %massive_card https://massive.metabaseapp.com/question/484-daily -o daily
            %massive_card 484 --limit 100 --refresh
            %massive_card https://massive.metabaseapp.com/question/497-x?country=DE&country=GB
            %massive_card 507 --as arrow -o sessions    # a pyarrow Table (or polars)

            %%massive_card 497 -o europe
            Date = {march}                # a (start, end) tuple of dates from the notebook
            Country = ["DE", "GB"]        # JSON list: a multi-value filter
            platform = Android            # a bare string
        """
        args = parse_argstring(self.massive_card, line)
        ref, params = self._inputs(args, cell, "Card reference")
        with self._translate():
            df, built, seconds = self.session.read_card(
                ref,
                params,
                output=args.as_kind or self.output,
                limit=args.limit,
                refresh=args.refresh,
                quiet=args.quiet,
            )
        if not args.output:
            return df
        if self._store(args, df):
            _show(frame_summary(args.output, df, seconds, meta_from=built))  # links the card
        return None

    @magic_arguments()
    @argument("ref", help="Card id, 'id-slug' or the card's URL; {var} takes it from Python.")
    @no_var_expand
    @line_magic
    def massive_info(self, line: str) -> None:
        """Show what a card is, without running it: one request, then cached.

        Its name, description, collection, who last edited it and when, a link to
        open it in Metabase, its parameters (slug, display name, type, default,
        required, allowed values) and its columns with their Metabase types and
        the pandas dtypes they become. A table in a notebook, text in a terminal;
        ``massive_magic.Client().card_info(ref)`` gives the same facts as a dict.
        Tab after ``%massive_info `` completes card references.

        Examples::

            %massive_info 497
            %massive_info https://massive.metabaseapp.com/question/497-earnings-by-country
        """
        from .card_view import CardInfoView

        args = parse_argstring(self.massive_info, line)
        ns = self.shell.user_ns if self.shell is not None else {}
        with self._translate():
            ref = expand_vars(args.ref, ns, where="Card reference")
            client = self._current_client()
            info = client.card_info(ref)
        _show(CardInfoView(info, server=client.url))

    @magic_arguments()
    @argument("ref", help="Dashboard id or URL; {var} takes it from Python.")
    @argument("-o", "--output", metavar="VAR", help="Store the result in VAR; print a summary.")
    @argument("--as", dest="as_kind", choices=OUTPUTS, help=AS_HELP)
    @argument("-q", "--quiet", action="store_true", help="No progress bar, no summary line.")
    @no_var_expand
    @line_cell_magic
    def massive_dashboard(self, line: str, cell: str | None = None) -> Any:
        """Read every card of a dashboard: a dict of DataFrames keyed by card name.

        The cell body holds the dashboard's filters, written as for %%massive_card.
        Cards are read in parallel (``%config MassiveMagics.max_workers``). A card
        that fails does not lose the others: a warning names it and its error is in
        ``result.errors``.

        Examples::

            %massive_dashboard 12 -o overview

            %%massive_dashboard https://massive.metabaseapp.com/dashboard/12-overview
            Date = {march}
            Country = ["DE", "GB"]
        """
        args = parse_argstring(self.massive_dashboard, line)
        ref, params = self._inputs(args, cell, "Dashboard reference")
        with self._translate():
            result, seconds = self.session.read_dashboard(
                ref,
                params,
                output=args.as_kind or self.output,
                max_workers=self.max_workers,
                quiet=args.quiet,
            )
        if not args.output:
            return result
        if self._store(args, result):
            print(describe_dashboard(args.output, result, seconds))
        return None

    @magic_arguments()
    @no_var_expand
    @line_magic
    def massive_cards(self, line: str) -> Any:
        """Show the cards you can read in a searchable picker.

        Search by name or collection, pick a card, fill in its filters and load
        it (into ``df``, the name its code shows), or copy the matching
        %%massive_card cell into the notebook.
        ``massive_magic.Client().cards()`` gives the same list as a DataFrame.

        Example::

            %massive_cards
        """
        parse_argstring(self.massive_cards, line)  # takes no arguments: refuse strays
        client = self._current_client()
        with self._translate():
            from .card_picker import picker

            shell = self.shell
            if shell is None:
                return picker(client)
            return picker(client, set_next_input=shell.set_next_input, namespace=shell.user_ns)


def _show(value: Any) -> None:
    """Display ``value`` with all its representations (HTML in Jupyter, text in a terminal)."""
    from IPython.display import display

    display(value)


def notebook_login() -> NotebookLogin | None:
    """The client ``%massive_login`` logged in with, the user namespace and the
    next-cell hook, when this runs in IPython with the extension loaded; else None."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return None
    magics = shell.magics_manager.registry.get("MassiveMagics")
    if not isinstance(magics, MassiveMagics):
        return None
    return NotebookLogin(magics.client, shell.user_ns, shell.set_next_input)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register one MassiveMagics instance (a second %load_ext keeps the first)."""
    if "MassiveMagics" not in ipython.magics_manager.registry:
        magics = MassiveMagics(ipython)
        ipython.register_magics(magics)
        magics.plain_warnings = PlainWarnings(warnings.formatwarning)
        warnings.formatwarning = magics.plain_warnings
        magics.completer.install(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Stop the sandbox, close the client, unregister the magics (sessions stay cached)."""
    magics = ipython.magics_manager.registry.pop("MassiveMagics", None)
    if magics is None:
        return
    magics.close()
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    for kind, names in magics.magics.items():
        table = ipython.magics_manager.magics[kind]
        for name in names:
            table.pop(name, None)
