"""Deterministic demo data: a Massive partner's reporting, as Metabase cards.

Massive pays app developers per GB of bandwidth their users share through its SDK, so the
cards report earnings, bandwidth and devices per app, platform and country.  Everything is
generated from seeded numpy generators on first use and cached; nothing large is stored in
the repository.

Card ids (``GET /api/card/:id``) and the dashboard id are constants of this module:

=====================  ====  =================================  ==========================
constant               id    name                               parameters (slug: type)
=====================  ====  =================================  ==========================
``DAILY_EARNINGS``     484   Daily earnings by app (14,640 r.)  none
``EARNINGS_FILTERED``  497   Earnings by country (filtered)     date: date/all-options
                                                                (default 2024-01-01~2024-01-31),
                                                                country: string/= (static
                                                                list, multi), platform:
                                                                category, min_earnings:
                                                                number/=
``ALL_TYPES``          501   All column types (11 rows)         none
``BROKEN``             503   Payout reconciliation              none; fails (invalid-query)
``RESTRICTED``         505   Internal: partner margins          403 for the demo user
``LARGE``              507   Device sessions (1M rows)          none; 8 columns
``SEQUENCE``           512   Sequence                           rows: number/= (required,
                                                                default "10")
``REQUIRED_PARAM``     515   Earnings for one app               app: category (required,
                                                                no default)
``OVERVIEW_DASHBOARD`` 12    Partner overview                   date (``DASH_DATE_PARAM``,
                                                                default Q1 2024), country
                                                                (``DASH_COUNTRY_PARAM``)
=====================  ====  =================================  ==========================

Dashcards of the overview: ``DASHCARD_FILTERED`` (101, filters mapped),
``DASHCARD_DAILY`` (102), ``DASHCARD_BROKEN`` (103), ``DASHCARD_TEXT`` (104, text only).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .catalog import (
    Card,
    Dashboard,
    Dashcard,
    DashParam,
    QueryError,
    RunContext,
    Tag,
    date_range,
    number,
    single,
)
from .values import Column, Table, column

# --- credentials ----------------------------------------------------------------------
DEMO_USERNAME = "demo@massive.example"
DEMO_PASSWORD = "massive-demo-password"
DEMO_API_KEY = "mb_DemoPartnerKey0123456789abcdef"
ADMIN_USERNAME = "admin@massive.example"

# --- card ids ---------------------------------------------------------------------------
DAILY_EARNINGS = 484
EARNINGS_FILTERED = 497
ALL_TYPES = 501
BROKEN = 503
RESTRICTED = 505
LARGE = 507
SEQUENCE = 512
REQUIRED_PARAM = 515

# --- dashboards -------------------------------------------------------------------------
OVERVIEW_DASHBOARD = 12
DASH_DATE_PARAM = "f3a1c2d4"
DASH_COUNTRY_PARAM = "9b0e7d21"
DASHCARD_FILTERED = 101
DASHCARD_DAILY = 102
DASHCARD_BROKEN = 103
DASHCARD_TEXT = 104

LARGE_ROWS = 1_000_000
DAILY_EARNINGS_ROWS = 366 * 5 * 8

APPS = ("Lumen Weather", "PuzzleDash", "TrailMap Pro")
#: (app, platform) pairs that ship the SDK
APP_PLATFORMS = (
    ("Lumen Weather", "Android"),
    ("PuzzleDash", "Android"),
    ("PuzzleDash", "Windows"),
    ("TrailMap Pro", "Windows"),
    ("TrailMap Pro", "macOS"),
)
PLATFORMS = ("Android", "Windows", "macOS")
COUNTRIES = ("BR", "DE", "GB", "ID", "IN", "MX", "NG", "US")
#: USD paid per GB of shared bandwidth, by country
RATE_PER_GB = {
    "BR": 0.12,
    "DE": 0.31,
    "GB": 0.29,
    "ID": 0.08,
    "IN": 0.07,
    "MX": 0.11,
    "NG": 0.06,
    "US": 0.35,
}
YEAR_START = dt.date(2024, 1, 1)
_DAY0 = (YEAR_START - dt.date(1970, 1, 1)).days


def _once(build: Callable[[], Table]) -> Callable[[], Table]:
    """Build a table on first use, once per process even when requests race for it."""
    lock = threading.Lock()
    cached = functools.cache(build)

    @functools.wraps(build)
    def get() -> Table:
        with lock:
            return cached()

    return get


def _objects(values: list[Any] | np.ndarray) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values) if not isinstance(values, np.ndarray) else values
    return arr


@_once
def daily_earnings() -> Table:
    """366 days x 5 app/platforms x 8 countries of earnings, sorted by day."""
    rng = np.random.default_rng(484)
    days = np.arange(366)
    n_combo = len(APP_PLATFORMS) * len(COUNTRIES)
    day = np.repeat(days, n_combo) + _DAY0
    combo = np.tile(np.arange(n_combo), len(days))
    app_idx = combo // len(COUNTRIES)
    country_idx = combo % len(COUNTRIES)
    apps = _objects([a for a, _ in APP_PLATFORMS])[app_idx]
    platforms = _objects([p for _, p in APP_PLATFORMS])[app_idx]
    countries = _objects(list(COUNTRIES))[country_idx]
    base = rng.integers(40, 900, n_combo)[combo]
    growth = 1.0 + np.repeat(days, n_combo) / 366 * 0.6
    weekly = np.where((np.repeat(days, n_combo) + 0) % 7 >= 5, 1.15, 1.0)
    devices = rng.poisson(base * growth * weekly).astype(np.int64)
    per_device = rng.gamma(4.0, 0.035, len(day))
    bandwidth = np.round(devices * per_device, 3)
    rate = np.array([RATE_PER_GB[c] for c in COUNTRIES])[country_idx]
    earnings = np.round(bandwidth * rate, 2)
    return Table(
        [
            column("day", "date", day, display_name="Day"),
            column("app", "text", apps, display_name="App", semantic_type="type/Category"),
            column(
                "platform",
                "text",
                platforms,
                display_name="Platform",
                semantic_type="type/Category",
            ),
            column(
                "country", "text", countries, display_name="Country", semantic_type="type/Country"
            ),
            column("bandwidth_gb", "float", bandwidth, display_name="Bandwidth (GB)"),
            column(
                "earnings_usd",
                "decimal",
                earnings,
                display_name="Earnings (USD)",
                semantic_type="type/Currency",
            ),
            column("active_devices", "int", devices, display_name="Active devices"),
        ],
        len(day),
    )


def _run_daily(values: dict[str, Any], ctx: RunContext) -> Table:
    return daily_earnings()


def _run_filtered(values: dict[str, Any], ctx: RunContext) -> Table:
    table = daily_earnings()
    cols = {c.name: c for c in table.columns}
    keep = np.ones(table.length, dtype=bool)
    if values.get("date") is not None:
        start, end = date_range(values["date"], ctx.today)
        day = cols["day"].data
        if start is not None:
            keep &= day >= (start - dt.date(1970, 1, 1)).days
        if end is not None:
            keep &= day <= (end - dt.date(1970, 1, 1)).days
    if values.get("country") is not None:
        wanted = values["country"] if isinstance(values["country"], list) else [values["country"]]
        keep &= np.isin(cols["country"].data, [str(w) for w in wanted])
    if values.get("platform") is not None:
        keep &= cols["platform"].data == str(single(values["platform"], "Platform"))
    if values.get("min_earnings") is not None:
        keep &= cols["earnings_usd"].data >= number(values["min_earnings"], "Min earnings")
    result = table.take(np.flatnonzero(keep))
    return Table([c for c in result.columns if c.name != "active_devices"], result.length)


def _run_required(values: dict[str, Any], ctx: RunContext) -> Table:
    table = daily_earnings()
    app = str(single(values["app"], "App"))
    keep = np.flatnonzero(table.columns[1].data == app)
    result = table.take(keep)
    return Table([result.columns[i] for i in (0, 1, 2, 3, 5)], result.length)


def _run_broken(values: dict[str, Any], ctx: RunContext) -> Table:
    raise QueryError(
        'ERROR: relation "partner_payoutz" does not exist\n  Position: 38',
        "invalid-query",
        **{"class": "org.postgresql.util.PSQLException", "state": "42P01"},
    )


@functools.lru_cache(maxsize=16)
def _sequence_labels(n: int) -> np.ndarray:
    return _objects([f"row {i}" for i in range(1, n + 1)])


def _run_sequence(values: dict[str, Any], ctx: RunContext) -> Table:
    raw = number(values["rows"], "Rows")
    if raw != int(raw):
        raise QueryError(
            "ERROR: function generate_series(integer, numeric) does not exist", "invalid-query"
        )
    n = max(0, min(int(raw), ctx.limit))
    labels = (
        _sequence_labels(n) if n <= 100_000 else _objects([f"row {i}" for i in range(1, n + 1)])
    )
    return Table(
        [
            column("n", "int", np.arange(1, n + 1, dtype=np.int64), display_name="N"),
            column("label", "text", labels, display_name="Label"),
        ],
        n,
    )


@_once
def large_table() -> Table:
    """1,000,000 device sessions with eight mixed-type columns, built once per process."""
    return _build_large(LARGE_ROWS)


def _build_large(n: int) -> Table:
    rng = np.random.default_rng(507)
    bandwidth = np.round(rng.gamma(2.0, 35.0, n), 3)
    bandwidth_mask = np.zeros(n, dtype=bool)
    bandwidth_mask[::101] = True
    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    started = np.sort(rng.integers(start, start + 366 * 86400, n)).astype(np.int64)
    return Table(
        [
            column(
                "session_id",
                "int",
                np.arange(1, n + 1, dtype=np.int64),
                display_name="Session ID",
                semantic_type="type/PK",
            ),
            column(
                "device_id",
                "bigint",
                (2**60 + rng.integers(0, 2**40, n)).astype(np.int64),
                display_name="Device ID",
                semantic_type="type/FK",
            ),
            Column(
                "bandwidth_mb", "float", bandwidth, bandwidth_mask, display_name="Bandwidth (MB)"
            ),
            column(
                "app",
                "text",
                _objects(list(APPS))[rng.integers(0, len(APPS), n)],
                display_name="App",
                semantic_type="type/Category",
            ),
            column(
                "country",
                "text",
                _objects(list(COUNTRIES))[rng.integers(0, len(COUNTRIES), n)],
                display_name="Country",
                semantic_type="type/Country",
            ),
            column("on_wifi", "bool", rng.random(n) < 0.7, display_name="On Wi-Fi"),
            column(
                "day",
                "date",
                (started - started % 86400) // 86400,
                display_name="Day",
            ),
            column(
                "started_at",
                "datetimetz",
                started,
                display_name="Started at",
                semantic_type="type/CreationTimestamp",
            ),
        ],
        n,
    )


def _run_large(values: dict[str, Any], ctx: RunContext) -> Table:
    return large_table()


D = dt.date
DT = dt.datetime
UTC = dt.timezone.utc
ALL_TYPES_TEXT = (
    "plain",
    "comma, inside",
    'quote " inside',
    "new\nline",
    "unicode ✓ ü 日本 🚀",
    "null",
    "",
    "semi;colon",
    "tab\there",
    "  padded  ",
)


@_once
def all_types_table() -> Table:
    """Every type family Metabase sends, with a null in every column (last row)."""
    rows = 10
    return Table(
        [
            column("id", "int", [*range(1, rows + 1), None], display_name="ID"),
            column(
                "big_id",
                "bigint",
                [
                    1,
                    9007199254740991,
                    9007199254740992,
                    9007199254740993,
                    9223372036854775807,
                    -9223372036854775807,
                    -9007199254740993,
                    0,
                    42,
                    123456789012,
                    None,
                ],
                display_name="Big ID",
            ),
            column(
                "amount",
                "decimal",
                [1234.5, 0.1, -3.25, 99999999.99, 0.0, 12.0, 5.55, 1e-2, 100.0, 7.77, None],
                display_name="Amount",
            ),
            column(
                "ratio",
                "float",
                [0.5, 1e-10, 3.141592653589793, -2.5, 1e20, 0.0, 1 / 3, 2.0, -0.001, 42.42, None],
                display_name="Ratio",
            ),
            column("label", "text", [*ALL_TYPES_TEXT, None], display_name="Label"),
            column(
                "active",
                "bool",
                [True, False, True, False, True, True, False, False, True, False, None],
                display_name="Active",
            ),
            column(
                "day",
                "date",
                [
                    D(2024, 1, 15),
                    D(2024, 3, 31),
                    D(2024, 7, 1),
                    D(2024, 10, 27),
                    D(2024, 12, 31),
                    D(2000, 2, 29),
                    D(1999, 12, 31),
                    D(2024, 6, 15),
                    D(2024, 2, 29),
                    D(1970, 1, 1),
                    None,
                ],
                display_name="Day",
            ),
            column(
                "created_at",
                "datetime",
                [
                    DT(2024, 1, 15, 10, 30),
                    DT(2024, 3, 31, 12, 0),
                    DT(2024, 7, 1, 0, 0),
                    DT(2024, 10, 27, 23, 59, 59),
                    DT(2024, 12, 31, 8, 5, 6),
                    DT(2000, 2, 29, 13, 0),
                    DT(1999, 12, 31, 23, 0),
                    DT(2024, 6, 15, 6, 45),
                    DT(2024, 2, 29, 18, 20),
                    DT(1970, 1, 1, 0, 0, 1),
                    None,
                ],
                display_name="Created at",
            ),
            column(
                "paid_at",
                "datetimetz",
                [
                    DT(2024, 1, 15, 9, 30, tzinfo=UTC),
                    DT(2024, 3, 31, 1, 30, tzinfo=UTC),
                    DT(2024, 7, 1, 22, 15, tzinfo=UTC),
                    DT(2024, 10, 27, 0, 30, tzinfo=UTC),
                    DT(2024, 12, 31, 23, 30, tzinfo=UTC),
                    DT(2000, 2, 29, 12, 0, tzinfo=UTC),
                    DT(1999, 12, 31, 23, 0, tzinfo=UTC),
                    DT(2024, 6, 15, 4, 45, tzinfo=UTC),
                    DT(2024, 2, 29, 17, 20, tzinfo=UTC),
                    DT(1970, 1, 1, 0, 0, tzinfo=UTC),
                    None,
                ],
                display_name="Paid at",
            ),
            column(
                "start_time",
                "time",
                [
                    dt.time(10, 30),
                    dt.time(0, 0),
                    dt.time(23, 59, 59),
                    dt.time(12, 0),
                    dt.time(6, 5, 4),
                    dt.time(18, 30),
                    dt.time(1, 2, 3),
                    dt.time(9, 0),
                    dt.time(15, 15),
                    dt.time(20, 45),
                    None,
                ],
                display_name="Start time",
            ),
            column(
                "payload",
                "json",
                [
                    '{"gb": 1.5, "tags": ["a", "b"]}',
                    "[]",
                    "{}",
                    '{"nested": {"x": null}}',
                    "[1, 2, 3]",
                    '"text"',
                    "42",
                    "true",
                    '{"emoji": "🚀"}',
                    "null",
                    None,
                ],
                display_name="Payload",
            ),
            column(
                "variant",
                "other",
                ["a", "1", '{"k": "v"}', "x", "y", "z", "[1]", "", "null", "v", None],
                display_name="Variant",
                base_type="type/SnowflakeVariant",
                database_type="VARIANT",
            ),
            column("count", "int", [*range(10, 10 * rows + 1, 10), None], display_name="Count"),
            column(
                "count_2", "int", [*range(100, 100 * rows + 1, 100), None], display_name="Count"
            ),
        ],
        rows + 1,
    )


def _run_all_types(values: dict[str, Any], ctx: RunContext) -> Table:
    return all_types_table()


def build_cards() -> dict[int, Card]:
    """The demo catalogue, fresh per server (tests may add cards to theirs)."""
    daily = daily_earnings().head(0).columns
    filtered_cols = [c for c in daily if c.name != "active_devices"]
    required_cols = [daily[i] for i in (0, 1, 2, 3, 5)]
    seq_cols = [column("n", "int", [], display_name="N"), column("label", "text", [])]
    seq_cols[1] = column("label", "text", [], display_name="Label")
    cards = [
        Card(
            DAILY_EARNINGS,
            "Daily earnings by app",
            "SELECT day, app, platform, country, bandwidth_gb, earnings_usd, active_devices\n"
            "FROM partner_daily_earnings\nORDER BY day, app, platform, country",
            daily,
            _run_daily,
            description="Earnings and shared bandwidth per app, platform and country, 2024.",
        ),
        Card(
            EARNINGS_FILTERED,
            "Earnings by country (filtered)",
            "SELECT day, app, platform, country, bandwidth_gb, earnings_usd\n"
            "FROM partner_daily_earnings\nWHERE {{date}} AND {{country}}\n"
            "  [[AND platform = {{platform}}]]\n  [[AND earnings_usd >= {{min_earnings}}]]\n"
            "ORDER BY day, app, platform, country",
            filtered_cols,
            _run_filtered,
            tags=[
                Tag(
                    EARNINGS_FILTERED,
                    "date",
                    "Date",
                    "dimension",
                    widget_type="date/all-options",
                    default="2024-01-01~2024-01-31",
                ),
                Tag(
                    EARNINGS_FILTERED,
                    "country",
                    "Country",
                    "dimension",
                    widget_type="string/=",
                    values=list(COUNTRIES),
                    multi=True,
                ),
                Tag(EARNINGS_FILTERED, "platform", "Platform", "text"),
                Tag(EARNINGS_FILTERED, "min_earnings", "Min earnings", "number"),
            ],
            description="Daily earnings with date, country, platform and minimum filters.",
        ),
        Card(
            ALL_TYPES,
            "All column types",
            "SELECT * FROM qa.all_types ORDER BY id NULLS LAST",
            all_types_table().head(0).columns,
            _run_all_types,
            description="One column per Metabase type family, a null in every column.",
            collection_id=9,
            collection_name="QA",
        ),
        Card(
            BROKEN,
            "Payout reconciliation",
            "SELECT payout_id, amount_usd FROM partner_payoutz ORDER BY payout_id",
            [column("payout_id", "int", []), column("amount_usd", "decimal", [])],
            _run_broken,
            description="Broken on purpose: the table name has a typo.",
        ),
        Card(
            RESTRICTED,
            "Internal: partner margins",
            "SELECT * FROM finance.partner_margins",
            [column("partner", "text", []), column("margin", "float", [])],
            _run_daily,
            restricted=True,
            collection_id=3,
            collection_name="Finance (internal)",
        ),
        Card(
            LARGE,
            "Device sessions (1M rows)",
            "SELECT * FROM sdk_sessions ORDER BY started_at LIMIT 1000000",
            _build_large(0).columns,
            _run_large,
            description="One million SDK sessions, for benchmarks.",
            collection_id=9,
            collection_name="QA",
        ),
        Card(
            SEQUENCE,
            "Sequence",
            "SELECT n, 'row ' || n AS label FROM generate_series(1, {{rows}}) AS n",
            seq_cols,
            _run_sequence,
            tags=[Tag(SEQUENCE, "rows", "Rows", "number", default="10", required=True)],
            description="Exactly {{rows}} rows: tests row caps.",
            collection_id=9,
            collection_name="QA",
        ),
        Card(
            REQUIRED_PARAM,
            "Earnings for one app",
            "SELECT day, app, platform, country, earnings_usd FROM partner_daily_earnings\n"
            "WHERE app = {{app}} ORDER BY day, platform, country",
            required_cols,
            _run_required,
            tags=[Tag(REQUIRED_PARAM, "app", "App", "text", required=True, values=list(APPS))],
            description="Needs an app name.",
        ),
    ]
    return {c.id: c for c in cards}


def build_dashboards() -> dict[int, Dashboard]:
    """The demo dashboards."""
    overview = Dashboard(
        OVERVIEW_DASHBOARD,
        "Partner overview",
        "Earnings at a glance, with date and country filters.",
        [
            DashParam(DASH_DATE_PARAM, "Date", "date", "date/all-options", "2024-01-01~2024-03-31"),
            DashParam(DASH_COUNTRY_PARAM, "Country", "country", "string/="),
        ],
        [
            Dashcard(
                DASHCARD_FILTERED,
                EARNINGS_FILTERED,
                row=0,
                col=0,
                mappings={DASH_DATE_PARAM: "date", DASH_COUNTRY_PARAM: "country"},
            ),
            Dashcard(DASHCARD_DAILY, DAILY_EARNINGS, row=0, col=12),
            Dashcard(DASHCARD_BROKEN, BROKEN, row=6, col=0),
            Dashcard(
                DASHCARD_TEXT,
                None,
                row=6,
                col=12,
                size_y=2,
                text="## Partner overview\nEarnings are final two days after the day ends.",
            ),
        ],
    )
    return {overview.id: overview}
