"""Input from the network, validated once at the boundary: one function per kind of input.

A JSON body must be an object no deeper than `MAX_JSON_DEPTH`; an item id in a URL fits a
database integer; a number in a body is a finite number in its range; a query integer has a
bounded size. Anything else is a 400 with a message naming the input and the problem, before
any handler work; nothing malformed reaches the database or the math.
"""

from __future__ import annotations

import json
import math

from flask import abort, request

MAX_JSON_DEPTH = 16  # our bodies are flat objects; this leaves room and stops parser bombs
MAX_ID = 2**63 - 1  # the largest integer the databases store
MAX_DIGITS = 18  # digits of a query integer (limit, ...), well inside 64 bits


def _depth(value, limit: int) -> int:
    """The nesting depth of a parsed JSON value, counting no further than ``limit + 1``."""
    deepest, level, frontier = 0, 0, [value]
    while frontier and deepest <= limit:
        children = []
        for node in frontier:
            if isinstance(node, dict):
                children.extend(node.values())
            elif isinstance(node, list):
                children.extend(node)
        level += 1
        deepest = level if children else deepest
        frontier = children
    return deepest


def json_object() -> dict:
    """The request body as a JSON object ({} for an empty body); 400 for anything else."""
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser
        abort(400, "the request body is not valid JSON (or is nested too deeply)")
    if not isinstance(body, dict):
        abort(400, "the request body must be a JSON object")
    if _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        abort(400, f"the request body is nested more than {MAX_JSON_DEPTH} levels deep")
    return body


def item_id(value: int) -> int:
    """An item id from a URL: at most the largest stored integer."""
    if value > MAX_ID:
        abort(400, f"item id {value} is too large: ids are at most {MAX_ID}")
    return value


def number(value, name: str, *, low: float, high: float, allow_none: bool = True):
    """A JSON number with ``low <= value < high`` (None passes when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        abort(400, f"{name} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        abort(400, f"{name} must be a finite number")
    if not low <= value < high:  # compared exactly: a 400-digit integer is simply too large
        abort(400, f"{name} must be at least {low:g} and below {high:g}")
    return float(value)


MAX_CLASS_CHARACTERS = 200  # a class name, as the queue's filters take it


def class_filter(value, name: str) -> str | None:
    """A class name filter (predicted class, given label): a short string, or None when
    absent or empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_CLASS_CHARACTERS:
        abort(400, f"{name} must be a class name of at most {MAX_CLASS_CHARACTERS} characters")
    return value


def class_filters(source) -> dict:
    """The queue's filters (predicted class, given label) from a query string or a JSON body,
    each checked by `class_filter`."""
    return {key: class_filter(source.get(key), key) for key in ("predicted", "given")}


def query_fraction(name: str) -> float | None:
    """A query parameter strictly between 0 and 1 (a rate or a confidence); None if absent."""
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = float(raw) if len(raw) <= 32 else math.nan  # a number, not a 1 MB string
    except ValueError:
        value = math.nan
    if not 0 < value < 1:  # NaN fails this too
        abort(400, f"{name} must be a number above 0 and below 1")
    return value


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > MAX_DIGITS or not raw.lstrip("-").isdigit():
        abort(400, f"{name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        abort(400, f"{name} must be between {low} and {high}")
    return value
