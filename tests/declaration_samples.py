"""Parameter declarations in Metabase's JSON shape, for the declaration and parameter tests."""

from __future__ import annotations

from typing import Any


def var(slug: str, ptype: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{slug}",
        "slug": slug,
        "name": name or slug.replace("_", " ").title(),
        "type": ptype,
        "target": ["variable", ["template-tag", slug]],
        **extra,
    }


def dim(slug: str, ptype: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{slug}",
        "slug": slug,
        "name": name or slug.replace("_", " ").title(),
        "type": ptype,
        "target": ["dimension", ["template-tag", slug]],
        **extra,
    }


DECLS = [
    var("min_orders", "number/=", "Min orders", default="0"),
    dim("day", "date/all-options", "Day", required=True),
    var("region_text", "category", "Region text"),
    dim("region", "string/=", "Region"),
    var("since", "date/single", "Since"),
    dim("amount", "number/between", "Amount"),
    var("active", "boolean", "Active"),
    dim("flag", "boolean/=", "Flag"),
    dim("cat", "category", "Category"),
    dim("month", "date/month-year", "Month"),
    dim("unit", "temporal-unit", "Unit"),
]
