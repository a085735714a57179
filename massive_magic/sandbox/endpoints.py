"""The Metabase endpoints the client uses: routing, authentication and each handler.

One :class:`Api` per request turns the parsed request into a :class:`~.responses.Response`;
it never touches the socket.  Card queries are delegated to :class:`~.queries.QueryRun`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from email.message import Message
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from .auth import User
from .catalog import (
    BadRequest,
    Card,
    Dashboard,
    Dashcard,
    QueryError,
    dashboard_card_parameters,
    entity_id,
)
from .faults import Request
from .queries import QueryRun
from .responses import (
    FORBIDDEN,
    NOT_FOUND,
    UNAUTHENTICATED,
    Response,
    errors400,
    json_answer,
    text_answer,
)
from .streams import Breakdown
from .values import zone

if TYPE_CHECKING:
    from .handle import Sandbox

VERSION = {
    "tag": "v0.56.3",
    "date": "2025-08-20",
    "hash": "6d4a3b1",
    "branch": "release-x.56.x",
}
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(p), h)
    for m, p, h in [
        ("POST", r"/api/session", "login"),
        ("DELETE", r"/api/session", "logout"),
        ("GET", r"/api/session/properties", "properties"),
        ("GET", r"/api/health", "health"),
        ("GET", r"/api/user/current", "current_user"),
        ("GET", r"/api/card/?", "list_cards"),
        ("GET", r"/api/card/([^/]+)", "get_card"),
        ("POST", r"/api/card/([^/]+)/query", "query_card"),
        ("POST", r"/api/card/([^/]+)/query/([^/]+)", "export_card"),
        ("GET", r"/api/dashboard/?", "list_dashboards"),
        ("GET", r"/api/dashboard/([^/]+)", "get_dashboard"),
        ("POST", r"/api/dashboard/([^/]+)/dashcard/([^/]+)/card/([^/]+)/query", "query_dashcard"),
        (
            "POST",
            r"/api/dashboard/([^/]+)/dashcard/([^/]+)/card/([^/]+)/query/([^/]+)",
            "export_dashcard",
        ),
    ]
]
_PUBLIC = {"login", "logout", "properties", "health"}
_STAMP = "2024-05-01T08:45:00.120Z"
#: Who made every demo card and dashboard (``creator``, hydrated in lists).
_CREATOR = {
    "id": 1,
    "email": "analytics@massive.example",
    "first_name": "Massive",
    "last_name": "Analytics",
    "common_name": "Massive Analytics",
}


def _target(card: Card | None, tag_name: str) -> Any:
    tag = card.tag(tag_name) if card is not None else None
    return tag.target if tag is not None else None


def _lower_name(dash: Dashboard) -> str:
    return dash.name.lower()


class Api:
    """One request's endpoint logic: ``Api(...).route()`` is the answer."""

    def __init__(
        self,
        sb: Sandbox,
        rec: Request,
        headers: Message,
        client_ip: str,
        body: bytes,
    ) -> None:
        self.sb = sb
        self.rec = rec
        self.method = rec.method
        self.path = rec.path
        self.headers = headers
        self.client_ip = client_ip
        self.body = body
        self.user: User | None = None

    # -- request parsing -------------------------------------------------------------------
    def _cookie_token(self) -> str | None:
        raw = self.headers.get("Cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except Exception:
            return None
        morsel = jar.get("metabase.SESSION")
        return morsel.value if morsel else None

    def _session_token(self) -> str | None:
        """The ``metabase.SESSION`` cookie wins over ``X-Metabase-Session`` (as Metabase)."""
        return self._cookie_token() or self.headers.get("X-Metabase-Session")

    def _authenticate(self) -> User | None:
        user = self.sb.accounts.session_user(self._session_token())
        if user is None:
            key = self.headers.get("X-API-Key")
            if key and key.startswith("mb_"):
                user = self.sb.accounts.api_keys.get(key)
        return user

    def _form(self) -> dict[str, Any]:
        """The request body as a dict: JSON object or url-encoded form (never the URL)."""
        if not self.body.strip():
            return {}
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "application/x-www-form-urlencoded" in ctype:
            form = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
            return {k: v[-1] for k, v in form.items()}
        try:
            parsed = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise BadRequest(400, "Malformed JSON in request body.") from None
        if not isinstance(parsed, dict):
            raise BadRequest(400, "Request body must be a JSON object.")
        return parsed

    @staticmethod
    def _parameters(form: dict[str, Any]) -> list[Any]:
        params = form.get("parameters")
        if params is None or params == "":
            return []
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except ValueError:
                raise errors400("parameters", "value must be a valid JSON string.") from None
        if params is None:
            return []
        if not isinstance(params, list):
            raise errors400("parameters", "nullable sequence of parameter must be an array.")
        return params

    @staticmethod
    def _bool(form: dict[str, Any], key: str, default: bool = False) -> bool:
        value = form.get(key, default)
        if isinstance(value, str):
            if value.lower() not in ("true", "false"):
                raise errors400(key, "value must be a valid boolean string ('true' or 'false').")
            return value.lower() == "true"
        return bool(value)

    # -- routing ---------------------------------------------------------------------------
    def route(self) -> Response:
        allowed_elsewhere = False
        for m, pattern, name in _ROUTES:
            match = pattern.fullmatch(self.path)
            if not match:
                continue
            if m != self.method:
                allowed_elsewhere = True
                continue
            if name not in _PUBLIC:
                self.user = self._authenticate()
                if self.user is None:
                    return text_answer(401, UNAUTHENTICATED)
            return getattr(self, name)(*match.groups())
        if allowed_elsewhere or self.path.startswith("/api/"):
            return text_answer(404, "API endpoint does not exist.")
        return text_answer(404, NOT_FOUND)

    # -- session ---------------------------------------------------------------------------
    def login(self) -> Response:
        form = self._form()
        username, password = form.get("username"), form.get("password")
        for key, value in (("username", username), ("password", password)):
            if not isinstance(value, str) or not value.strip():
                return json_answer(400, {"errors": {key: "value must be a non-blank string."}})
        forwarded = self.headers.get("X-Forwarded-For")
        address = forwarded.split(",")[-1].strip() if forwarded else self.client_ip
        token, throttled = self.sb.accounts.login(str(username), str(password), address)
        if throttled:
            return json_answer(401, {"errors": {"username": throttled}})
        if token is None:
            return json_answer(401, {"errors": {"password": "did not match stored password"}})
        cookie = f"metabase.SESSION={token}; HttpOnly; Path=/; SameSite=Lax"
        if form.get("remember") is True:
            cookie += f"; Max-Age={int(self.sb.max_session_age)}"
        return json_answer(
            200,
            {"id": token},
            [
                ("Set-Cookie", cookie),
                ("Set-Cookie", "metabase.TIMEOUT=alive; Path=/; SameSite=Lax"),
            ],
        )

    def logout(self) -> Response:
        if not self.sb.accounts.logout(self._session_token()):
            return text_answer(404, NOT_FOUND)
        gone = "Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"
        return Response(
            204,
            b"",
            "text/plain",
            [
                ("Set-Cookie", f"metabase.SESSION=; {gone}"),
                ("Set-Cookie", f"metabase.TIMEOUT=; {gone}"),
                ("Set-Cookie", f"metabase.EMBEDDED_SESSION=; {gone}"),
            ],
        )

    def properties(self) -> Response:
        tz_name = self.sb.report_timezone
        return json_answer(
            200,
            {
                "version": VERSION,
                "site-name": "Massive partner reporting (sandbox)",
                "site-url": self.sb.url,
                "site-locale": "en",
                "has-user-setup": True,
                "enable-password-login": True,
                "ldap-enabled": False,
                "google-auth-enabled": False,
                "session-cookies": None,
                "anon-tracking-enabled": False,
                "report-timezone-short": dt.datetime.now(zone(tz_name).tz).strftime("%Z"),
                "report-timezone-long": tz_name,
                "token-features": {},
                "engines": {},
            },
        )

    def health(self) -> Response:
        return json_answer(200, {"status": "ok"})

    def current_user(self) -> Response:
        assert self.user is not None
        return json_answer(200, self.user.describe())

    # -- cards -----------------------------------------------------------------------------
    def _card(self, raw_id: str) -> Card:
        if not raw_id.isdigit() or int(raw_id) <= 0:
            raise errors400("id", "value must be an integer greater than zero.")
        card = self.sb.cards.get(int(raw_id))
        if card is None:
            raise BadRequest(404, NOT_FOUND)
        assert self.user is not None
        if card.restricted and not self.user.superuser:
            raise BadRequest(403, FORBIDDEN)
        return card

    def _describe(self, card: Card) -> dict[str, Any]:
        assert self.user is not None
        return card.describe(can_write=self.user.superuser)

    def list_cards(self) -> Response:
        assert self.user is not None
        query = parse_qs(self.rec.query)
        mode = query.get("f", ["all"])[-1]
        if mode in ("database", "table", "using_model", "using_segment") and not query.get(
            "model_id"
        ):
            return text_answer(
                400, f"model_id is a required parameter when filter mode is '{mode}'"
            )
        visible = [c for c in self.sb.cards.values() if self.user.superuser or not c.restricted]
        if mode in ("mine", "bookmarked", "archived", "database", "table"):
            visible = []
        out = [
            {**self._describe(c), "creator": _CREATOR}
            for c in sorted(visible, key=lambda c: c.name.lower())
        ]
        return json_answer(200, out)

    def get_card(self, raw_id: str) -> Response:
        return json_answer(200, self._describe(self._card(raw_id)))

    def query_card(self, raw_id: str) -> Response:
        return self._run(self._card(raw_id), "query", context="question")

    def export_card(self, raw_id: str, fmt: str) -> Response:
        card = self._card(raw_id)
        if fmt not in ("api", "json", "csv", "xlsx"):
            raise errors400("export-format", 'value must be one of: "api", "csv", "json", "xlsx".')
        if fmt == "xlsx":
            return text_answer(400, "xlsx exports are not supported by the sandbox.")
        return self._run(card, fmt, context="question")

    # -- dashboards ------------------------------------------------------------------------
    def _dashboard(self, raw_id: str) -> Dashboard:
        if not raw_id.isdigit() or int(raw_id) <= 0:
            raise errors400("id", "value must be an integer greater than zero.")
        dash = self.sb.dashboards.get(int(raw_id))
        if dash is None:
            raise BadRequest(404, NOT_FOUND)
        return dash

    def list_dashboards(self) -> Response:
        """``GET /api/dashboard/?f=all|mine|archived`` (Metabase keeps it "for backwards
        compatibility"): the dashboards the user may read, by lower-cased name, each the
        dashboard row with its ``creator``; archived ones only with ``f=archived``."""
        assert self.user is not None
        mode = parse_qs(self.rec.query).get("f", ["all"])[-1]
        if mode not in ("all", "mine", "archived"):
            raise errors400("f", "nullable enum of all, mine, archived")
        dashes = [] if mode != "all" else sorted(self.sb.dashboards.values(), key=_lower_name)
        out = [
            {
                "id": dash.id,
                "entity_id": entity_id("dashboard", dash.id),
                "name": dash.name,
                "description": dash.description,
                "collection_id": dash.collection_id,
                "collection_position": None,
                "archived": False,
                "creator_id": _CREATOR["id"],
                "creator": _CREATOR,
                "enable_embedding": False,
                "public_uuid": None,
                "created_at": _STAMP,
                "updated_at": _STAMP,
                "parameters": [p.describe() for p in dash.parameters],
            }
            for dash in dashes
        ]
        return json_answer(200, out)

    def get_dashboard(self, raw_id: str) -> Response:
        dash = self._dashboard(raw_id)
        return json_answer(
            200,
            {
                "id": dash.id,
                "entity_id": entity_id("dashboard", dash.id),
                "name": dash.name,
                "description": dash.description,
                "collection_id": dash.collection_id,
                "archived": False,
                "can_write": False,
                "enable_embedding": False,
                "public_uuid": None,
                "auto_apply_filters": True,
                "width": "fixed",
                "created_at": _STAMP,
                "updated_at": _STAMP,
                "parameters": [p.describe() for p in dash.parameters],
                "tabs": [],
                "dashcards": [self._describe_dashcard(dash, dc) for dc in dash.dashcards],
            },
        )

    def _describe_dashcard(self, dash: Dashboard, dc: Dashcard) -> dict[str, Any]:
        card = self.sb.cards.get(dc.card_id) if dc.card_id is not None else None
        viz: dict[str, Any] = {}
        if dc.card_id is None:
            viz = {
                "virtual_card": {
                    "name": None,
                    "display": "text",
                    "visualization_settings": {},
                    "dataset_query": {},
                    "archived": False,
                },
                "text": dc.text or "",
            }
        return {
            "id": dc.id,
            "dashboard_id": dash.id,
            "dashboard_tab_id": None,
            "card_id": dc.card_id,
            "card": self._describe(card) if card else {"query_average_duration": None},
            "parameter_mappings": [
                {"parameter_id": pid, "card_id": dc.card_id, "target": _target(card, tag)}
                for pid, tag in dc.mappings.items()
            ],
            "series": [],
            "row": dc.row,
            "col": dc.col,
            "size_x": dc.size_x,
            "size_y": dc.size_y,
            "visualization_settings": viz,
            "action_id": None,
            "created_at": _STAMP,
            "updated_at": _STAMP,
        }

    def _dashcard(self, raw_d: str, raw_dc: str, raw_c: str) -> tuple[Dashboard, Dashcard, Card]:
        dash = self._dashboard(raw_d)
        for raw in (raw_dc, raw_c):
            if not raw.isdigit() or int(raw) <= 0:
                raise errors400("id", "value must be an integer greater than zero.")
        dashcard = next((d for d in dash.dashcards if d.id == int(raw_dc)), None)
        if dashcard is None or dashcard.card_id != int(raw_c):
            raise BadRequest(404, NOT_FOUND)
        return dash, dashcard, self._card(raw_c)

    def query_dashcard(self, raw_d: str, raw_dc: str, raw_c: str) -> Response:
        dash, dashcard, card = self._dashcard(raw_d, raw_dc, raw_c)
        return self._run(card, "query", context="dashboard", dashboard=(dash, dashcard))

    def export_dashcard(self, raw_d: str, raw_dc: str, raw_c: str, fmt: str) -> Response:
        dash, dashcard, card = self._dashcard(raw_d, raw_dc, raw_c)
        if fmt not in ("api", "json", "csv"):
            return text_answer(400, f"{fmt} exports are not supported by the sandbox.")
        return self._run(card, fmt, context="dashboard", dashboard=(dash, dashcard))

    # -- running queries -------------------------------------------------------------------
    def _run(
        self,
        card: Card,
        fmt: str,
        *,
        context: str,
        dashboard: tuple[Dashboard, Dashcard] | None = None,
    ) -> Response:
        """Parse the body's parameters and flags, then run ``card`` answered in ``fmt``."""
        form = self._form()
        params = self._parameters(form)
        if dashboard is not None:
            params = dashboard_card_parameters(*dashboard, card, params)
        run = QueryRun(
            self.sb,
            card,
            params,
            fmt,
            context,
            format_rows=self._bool(form, "format_rows") if fmt in ("json", "csv") else False,
            ignore_cache=self._bool(form, "ignore_cache") if fmt == "query" else True,
            dashboard=dashboard[0] if dashboard is not None else None,
            breakdown=self._breakdown,
        )
        return run.answer()

    def _breakdown(self) -> Breakdown | None:
        """A queued ``query_error_next`` fault for this request, used up here."""
        rule = self.sb.faults.take("query_error", self.method, self.path)
        if rule is None:
            return None
        self.rec.add_fault("query_error")
        return Breakdown(rule.after_rows, QueryError(rule.error, rule.error_type))
