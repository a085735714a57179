"""Cards, template tags, dashboards and parameter resolution, the way Metabase does it.

A :class:`Card` is a native question: SQL text, template tags and a ``run`` function that
receives the resolved tag values and returns a :class:`~.values.Table` (or raises
:class:`QueryError`, which becomes a ``"status": "failed"`` body).  Parameter validation
errors that Metabase raises *before* the query starts are :class:`InvalidParameter` (HTTP 500
with a ``Throwable->map``-like body) or :class:`BadRequest` (HTTP 400).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .values import Column, Table

_NAMESPACE = uuid.UUID("6f1d0c59-8f0b-4f4e-9a7c-4d6e2b1a0c11")

#: parameter type -> tag/widget types it may be sent for (metabase-api.md §7.3)
ALLOWED_FOR: dict[str, frozenset[str]] = {
    "text": frozenset({"text", "category"}),
    "number": frozenset({"number"}),
    "date": frozenset({"date", "date/single", "date/all-options"}),
    "date/single": frozenset({"date", "date/single", "date/all-options"}),
    "boolean": frozenset({"boolean"}),
    "id": frozenset({"id"}),
    "date/range": frozenset({"date/range", "date/all-options"}),
    "date/month-year": frozenset({"date/month-year", "date/all-options"}),
    "date/quarter-year": frozenset({"date/quarter-year", "date/all-options"}),
    "date/relative": frozenset({"date/relative", "date/all-options"}),
    "date/all-options": frozenset({"date/all-options"}),
    "number/=": frozenset({"number/=", "number", "id", "category", "location/zip_code"}),
    "number/!=": frozenset({"number/!="}),
    "number/>=": frozenset({"number/>="}),
    "number/<=": frozenset({"number/<="}),
    "number/between": frozenset({"number/between"}),
    "string/=": frozenset(
        {"string/=", "text", "id", "category", "location/city", "location/state"}
        | {"location/zip_code", "location/country"}
    ),
    "string/!=": frozenset({"string/!="}),
    "string/contains": frozenset({"string/contains"}),
    "string/does-not-contain": frozenset({"string/does-not-contain"}),
    "string/starts-with": frozenset({"string/starts-with"}),
    "string/ends-with": frozenset({"string/ends-with"}),
    "boolean/=": frozenset({"boolean", "boolean/="}),
    "temporal-unit": frozenset({"temporal-unit"}),
}
for _loc in ("location/city", "location/state", "location/zip_code", "location/country"):
    ALLOWED_FOR[_loc] = frozenset({_loc})


def stable_uuid(*parts: object) -> str:
    """A UUID that is the same on every run (demo ids must not change between sessions)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(map(str, parts))))


def entity_id(*parts: object) -> str:
    """A 21-character NanoID-looking entity id, stable across runs."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return "".join(alphabet[b % 64] for b in digest[:21])


class QueryError(Exception):
    """The query ran and failed: answered 202/200 with ``"status": "failed"``."""

    def __init__(self, error: str, error_type: str, **details: Any) -> None:
        super().__init__(error)
        self.error = error
        self.error_type = error_type
        self.details = details


class InvalidParameter(Exception):
    """Raised before the query starts; answered 500 with an E4 JSON body."""

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class BadRequest(Exception):
    """Raised before the query starts; answered with a plain-text status (E2)."""

    def __init__(self, status: int, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors  # answered as JSON ``{"errors": ...}`` (E3) when set


@dataclass
class Tag:
    """A template tag of a native card (and the card parameter mirroring it)."""

    card_id: int
    name: str
    display_name: str
    type: str  # "text" | "number" | "date" | "boolean" | "dimension"
    widget_type: str | None = None
    default: Any = None
    required: bool = False
    values: list[str] | None = None  # static value list for the widget
    multi: bool = False

    @property
    def id(self) -> str:
        return stable_uuid("tag", self.card_id, self.name)

    @property
    def parameter_type(self) -> str:
        if self.widget_type:
            return self.widget_type
        return {"date": "date/single", "number": "number/="}.get(self.type, "category")

    @property
    def accepts(self) -> str:
        """The tag/widget type parameter types are checked against."""
        return self.widget_type or self.type

    @property
    def target(self) -> list[Any]:
        kind = "dimension" if self.type == "dimension" else "variable"
        return [kind, ["template-tag", self.name]]

    def template_tag(self) -> dict[str, Any]:
        tag: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "display-name": self.display_name,
            "type": self.type,
        }
        if self.type == "dimension":
            tag["dimension"] = ["field", 300 + zlib.crc32(self.name.encode()) % 100, None]
            tag["widget-type"] = self.widget_type
        tag["required"] = self.required
        if self.default is not None:
            tag["default"] = self.default
        return tag

    def parameter(self) -> dict[str, Any]:
        param: dict[str, Any] = {
            "id": self.id,
            "type": self.parameter_type,
            "target": self.target,
            "name": self.display_name,
            "slug": self.name,
            "default": self.default,
            "required": self.required,
        }
        if self.values is not None:
            param["values_query_type"] = "list"
            param["values_source_type"] = "static-list"
            param["values_source_config"] = {"values": list(self.values)}
        else:
            param["values_source_type"] = None
            param["values_source_config"] = {}
        if self.multi:
            param["isMultiSelect"] = True
        return param


@dataclass
class RunContext:
    """What a card's ``run`` function may need besides parameter values."""

    today: dt.date
    card_id: int
    limit: int  # most rows the endpoint will send; runners may stop there


Runner = Callable[[dict[str, Any], RunContext], Table]


@dataclass
class Card:
    """A saved native question served by the sandbox."""

    id: int
    name: str
    sql: str
    columns: list[Column]  # metadata template (data unused)
    run: Runner
    tags: list[Tag] = field(default_factory=list)
    description: str | None = None
    collection_id: int = 7
    collection_name: str = "Partner reporting"
    restricted: bool = False
    display: str = "table"

    def tag(self, name: str) -> Tag | None:
        return next((t for t in self.tags if t.name == name), None)

    def tag_by_id(self, tag_id: str) -> Tag | None:
        return next((t for t in self.tags if t.id == tag_id), None)

    def dataset_query(self) -> dict[str, Any]:
        return {
            "type": "native",
            "native": {
                "query": self.sql,
                "template-tags": {t.name: t.template_tag() for t in self.tags},
            },
            "database": 2,
        }

    def result_metadata(self) -> list[dict[str, Any]]:
        return [c.metadata() for c in self.columns]

    def describe(self, *, can_write: bool = False) -> dict[str, Any]:
        """The ``GET /api/card/:id`` object."""
        slug = re.sub(r"[^a-z0-9]+", "_", self.collection_name.lower()).strip("_")
        stamp = "2024-04-30T14:02:11.310Z"
        return {
            "id": self.id,
            "entity_id": entity_id("card", self.id),
            "name": self.name,
            "description": self.description,
            "type": "question",
            "query_type": "native",
            "display": self.display,
            "database_id": 2,
            "table_id": None,
            "collection_id": self.collection_id,
            "collection": {
                "id": self.collection_id,
                "name": self.collection_name,
                "slug": slug,
                "is_personal": False,
                "archived": False,
            },
            "collection_position": None,
            "archived": False,
            "creator_id": 1,
            "created_at": stamp,
            "updated_at": stamp,
            "can_write": can_write,
            "public_uuid": None,
            "enable_embedding": False,
            "cache_ttl": None,
            "dataset_query": self.dataset_query(),
            "parameters": [t.parameter() for t in self.tags],
            "result_metadata": self.result_metadata(),
            "visualization_settings": {},
            "last-edit-info": {
                "id": 1,
                "email": "analytics@massive.example",
                "first_name": "Massive",
                "last_name": "Analytics",
                "timestamp": stamp,
            },
        }


@dataclass
class DashParam:
    """A dashboard filter."""

    id: str
    name: str
    slug: str
    type: str
    default: Any = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "type": self.type,
            "sectionId": self.type.split("/")[0],
            "default": self.default,
        }


@dataclass
class Dashcard:
    """A card (or a text box when ``card_id`` is None) placed on a dashboard."""

    id: int
    card_id: int | None
    row: int
    col: int
    size_x: int = 12
    size_y: int = 6
    mappings: dict[str, str] = field(default_factory=dict)  # dashboard param id -> tag name
    text: str | None = None


@dataclass
class Dashboard:
    id: int
    name: str
    description: str | None
    parameters: list[DashParam]
    dashcards: list[Dashcard]
    collection_id: int = 7

    def param(self, param_id: str) -> DashParam | None:
        return next((p for p in self.parameters if p.id == param_id), None)


# ---------------------------------------------------------------------------------------
# parameter resolution


def _tag_name_of(target: Any) -> tuple[str | None, str | None]:
    """(tag name, tag id) named by a target such as ``["variable", ["template-tag", "x"]]``."""
    if isinstance(target, list) and len(target) >= 2 and isinstance(target[1], list):
        ref = target[1]
        if len(ref) >= 2 and ref[0] == "template-tag":
            if isinstance(ref[1], str):
                return ref[1], None
            if isinstance(ref[1], dict):
                return None, ref[1].get("id")
    return None, None


def _invalid_type(card: Card, tag: Tag, ptype: str) -> InvalidParameter:
    allowed = sorted(["category", *(t for t, tags in ALLOWED_FOR.items() if tag.accepts in tags)])
    message = (
        f"Invalid parameter type :{ptype} for parameter {_q(tag.name)}. "
        f"Parameter type must be one of: {', '.join(':' + a for a in allowed)}"
    )
    return InvalidParameter(
        message,
        type="invalid-parameter",
        **{"invalid-parameter": {"type": ptype, "target": tag.target}},
        **{"allowed-types": allowed},
    )


def _q(name: str | None) -> str:
    return "nil" if name is None else f'"{name}"'


def resolve_card_parameters(card: Card, parameters: list[Any]) -> dict[str, Any]:
    """Tag name -> value for one card run (Metabase's ``validate-card-parameters``).

    Omitted tags get their default; ``"value": null`` means "no filter" (the default is
    *not* used).  Unknown tags and types not allowed for the widget raise
    :class:`InvalidParameter`; a required tag without value raises :class:`QueryError`.
    """
    given: dict[str, Any] = {}
    for param in parameters:
        if not isinstance(param, dict):
            raise BadRequest(400, "Invalid parameter: each parameter must be a map.")
        tag = card.tag_by_id(param["id"]) if isinstance(param.get("id"), str) else None
        target_name, target_id = _tag_name_of(param.get("target"))
        if tag is None and target_id:
            tag = card.tag_by_id(target_id)
        if tag is None and target_name:
            tag = card.tag(target_name)
        if tag is None:
            name = target_name
            raise InvalidParameter(
                f"Invalid parameter: Card {card.id} does not have a template tag named {_q(name)}.",
                type="invalid-parameter",
                **{
                    "invalid-parameter": param,
                    "allowed-parameters": [t.name for t in card.tags],
                },
            )
        ptype = param.get("type") or tag.parameter_type
        if ptype != "category" and tag.accepts not in ALLOWED_FOR.get(ptype, ()):
            raise _invalid_type(card, tag, ptype)
        if tag.name in given and tag.type != "dimension":
            raise QueryError(
                "Error: multiple values specified for parameter; non-Field Filter parameters "
                "can only have one value.",
                "invalid-parameter",
            )
        given[tag.name] = param.get("value")
    values: dict[str, Any] = {}
    for tag in card.tags:
        value = given.get(tag.name, tag.default)
        if value is None and tag.required:
            raise QueryError(
                f"You'll need to pick a value for '{tag.display_name}' before this query can run.",
                "missing-required-parameter",
            )
        values[tag.name] = value
    return values


def dashboard_card_parameters(
    dashboard: Dashboard, dashcard: Dashcard, card: Card, parameters: list[Any]
) -> list[dict[str, Any]]:
    """Turn dashboard-level parameters into card parameters via the dashcard's mappings."""
    explicit: dict[str, Any] = {}
    for param in parameters:
        if not isinstance(param, dict) or "id" not in param:
            raise BadRequest(
                400, "Unable to resolve invalid query parameter: parameter is missing :id"
            )
        dparam = dashboard.param(param["id"])
        if dparam is None:
            raise BadRequest(400, f'Dashboard does not have a parameter with ID "{param["id"]}".')
        explicit[dparam.id] = param
    out: list[dict[str, Any]] = []
    for dparam in dashboard.parameters:
        tag_name = dashcard.mappings.get(dparam.id)
        tag = card.tag(tag_name) if tag_name else None
        if tag is None:
            continue
        if dparam.id in explicit:
            value = explicit[dparam.id].get("value")
            ptype = explicit[dparam.id].get("type") or dparam.type
        elif dparam.default is not None:
            value, ptype = dparam.default, dparam.type
        else:
            continue
        is_date = (tag.widget_type or "").startswith("date")
        if tag.type == "dimension" and not is_date and value is not None:
            value = value if isinstance(value, list) else [value]
        out.append({"id": tag.id, "type": ptype, "target": tag.target, "value": value})
    return out


# ---------------------------------------------------------------------------------------
# value parsing helpers for run functions


def single(value: Any, label: str) -> Any:
    """A raw-variable value: scalars pass, one-element lists unwrap."""
    if isinstance(value, list):
        if len(value) != 1:
            raise QueryError(
                f"Error: multiple values specified for parameter '{label}'; non-Field Filter "
                "parameters can only have one value.",
                "invalid-parameter",
            )
        return value[0]
    return value


def number(value: Any, label: str) -> float:
    """A number tag value as Metabase reads it (strings with commas become SQL lists)."""
    value = single(value, label)
    if isinstance(value, bool):
        raise QueryError(f"Invalid value for parameter '{label}': {value!r}", "invalid-parameter")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    if "," in text:
        raise QueryError(
            f'ERROR: syntax error at or near ","\n  Position: {40 + len(label)}',
            "invalid-query",
            state="42601",
        )
    try:
        return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
    except ValueError:
        raise QueryError(
            f"Error determining value for parameter '{label}': could not parse {text!r} "
            "as a number.",
            "invalid-parameter",
        ) from None


_UNITS = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}


def date_range(value: Any, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """Inclusive (start, end) for a Metabase date parameter string; None ends are open."""
    value = single(value, "date")
    text = str(value).strip()
    try:
        return _date_range(text, today)
    except (ValueError, KeyError):
        raise QueryError(
            f"Don't know how to parse date string {_q(text)}", "invalid-parameter"
        ) from None


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text[:10])


def _date_range(text: str, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    if "~" in text and not re.match(r"(past|next)", text):
        a, b = text.split("~", 1)
        return (_day(a) if a else None, _day(b) if b else None)
    if text == "today":
        return today, today
    if text == "yesterday":
        before = today - dt.timedelta(days=1)
        return before, before
    m = re.fullmatch(r"(past|next)(\d+)(day|week|month|quarter|year)s(~)?", text)
    if m:
        n = int(m.group(2)) * _UNITS[m.group(3)]
        include = bool(m.group(4))
        if m.group(1) == "past":
            return today - dt.timedelta(days=n), today if include else today - dt.timedelta(1)
        return (today if include else today + dt.timedelta(1)), today + dt.timedelta(days=n)
    m = re.fullmatch(r"(this|last)(day|week|month|quarter|year)", text)
    if m:
        span = _UNITS[m.group(2)]
        end = today if m.group(1) == "this" else today - dt.timedelta(days=span)
        return end - dt.timedelta(days=span - 1), end
    m = re.fullmatch(r"Q([1-4])-(\d{4})", text)
    if m:
        q, y = int(m.group(1)), int(m.group(2))
        start = dt.date(y, 3 * q - 2, 1)
        end = dt.date(y + 1, 1, 1) if q == 4 else dt.date(y, 3 * q + 1, 1)
        return start, end - dt.timedelta(days=1)
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if m:
        y, mo = int(m.group(1)), int(m.group(2))
        start = dt.date(y, mo, 1)
        end = dt.date(y + 1, 1, 1) if mo == 12 else dt.date(y, mo + 1, 1)
        return start, end - dt.timedelta(days=1)
    day = _day(text)
    if len(text) > 10 and text[10] not in "T ":
        raise ValueError(text)
    return day, day
