"""massive-magic: read Massive's Metabase partner reporting into typed pandas DataFrames.

In a notebook::

    %load_ext massive_magic
    %massive_login --sandbox          # or: %massive_login --user you@partner.com
    %massive_card 1

In a script::

    from massive_magic import Client
    df = Client().card(484)

Public names are imported lazily, so ``%load_ext massive_magic`` stays cheap: the
HTTP stack, pandas conversion and widgets load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    AccessDenied,
    AuthError,
    BadCardRef,
    CacheWarning,
    CardNotFound,
    ConfigError,
    DashboardNotFound,
    IncompleteResultWarning,
    LoginThrottled,
    MassiveError,
    MassiveWarning,
    NotFound,
    ParameterError,
    QueryFailed,
    ResponseError,
    SnapshotError,
    SnapshotWarning,
    UnknownTypeWarning,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .card_picker import CardPicker, picker
    from .client import Client

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AuthError",
    "BadCardRef",
    "CacheWarning",
    "CardNotFound",
    "CardPicker",
    "Client",
    "ConfigError",
    "DashboardNotFound",
    "IncompleteResultWarning",
    "LoginThrottled",
    "MassiveError",
    "MassiveWarning",
    "NotFound",
    "ParameterError",
    "QueryFailed",
    "ResponseError",
    "SnapshotError",
    "SnapshotWarning",
    "UnknownTypeWarning",
    "__version__",
    "load_ipython_extension",
    "picker",
    "unload_ipython_extension",
]

_LAZY = {
    "Client": "client",
    "CardPicker": "card_picker",
    "picker": "card_picker",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'massive_magic' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext massive_magic``: register the magics (see ``massive_magic.magics``)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """``%unload_ext massive_magic``: log out nothing, stop the sandbox if one was started."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)
