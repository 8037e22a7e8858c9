"""The OpenAPI 3 document served at ``/api/openapi.json``.

The document is a data file beside this module (``openapi.json``); this module fills in what
belongs to other owners, so it cannot disagree with them: the strategy enum (from the strategy
table), the item's metric properties (from the metric list) and the error answers every
authenticated operation shares. A test checks that every API route is listed.
"""

from __future__ import annotations

import json
from pathlib import Path

from reviewer.core.strategies import DEFAULT, STRATEGIES
from reviewer.ml.uncertainty import METRICS

DOCUMENT = Path(__file__).with_name("openapi.json")
STRATEGY_PLACEHOLDER = "STRATEGIES"
NUMBER_OR_NULL = {"type": ["number", "null"]}


def _error(description: str) -> dict:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _error("bad request (unknown strategy or label, bad body, CSRF)"),
    "401": _error("not logged in, or an invalid / revoked token"),
    "403": _error("not allowed for this user's role"),
    "404": _error("no such item, or no active model version"),
    "409": _error(
        "no right to label: leased by someone else, your lease expired and the item was taken,"
        " or the item already has enough labels"
    ),
    "503": _error("the database is busy or unavailable: try again (Retry-After)"),
}


def _fill_strategies(node) -> None:
    """Replace every ``"enum": "STRATEGIES"`` placeholder with the strategy table's keys."""
    if isinstance(node, dict):
        if node.get("enum") == STRATEGY_PLACEHOLDER:
            node["enum"] = list(STRATEGIES)
            node.setdefault("default", DEFAULT)
        for value in node.values():
            _fill_strategies(value)
    elif isinstance(node, list):
        for value in node:
            _fill_strategies(value)


def openapi_document() -> dict:
    """The document, read from the data file and completed (a fresh dict on every call)."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    _fill_strategies(document)
    item = document["components"]["schemas"]["Item"]["properties"]
    item["strategy"]["enum"] = [*STRATEGIES, None]
    item.update({name: dict(NUMBER_OR_NULL) for name in METRICS})
    for operations in document["paths"].values():
        for operation in operations.values():
            if operation.get("security") != []:  # public operations answer no auth errors
                operation["responses"] = {**operation["responses"], **ERRORS}
    return document
