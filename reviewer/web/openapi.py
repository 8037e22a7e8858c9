"""The hand-written OpenAPI 3 document served at ``/api/openapi.json``.

This module owns the machine-readable description of the JSON API in
:mod:`reviewer.web.api`: every path, its request body, its answers and the
two ways to authenticate (a Bearer token, or the session cookie plus an
``X-CSRFToken`` header). The words are DESIGN.md's: ``entropy``,
``mutual_info``, ... A test checks that every API route is listed here.
"""

from __future__ import annotations

from reviewer.review.answers import METRIC_FIELDS, STRATEGIES


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "bad request (unknown strategy or label, bad body, CSRF)"),
    "401": _json(_ref("Error"), "not logged in, or an invalid / revoked token"),
    "403": _json(_ref("Error"), "not allowed for this user's role"),
    "404": _json(_ref("Error"), "no such item, or no active model version"),
    "409": _json(_ref("Error"), "the item is leased to someone else"),
}
ITEM_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
NUMBER_OR_NULL = {"type": ["number", "null"]}


def _op(summary: str, responses: dict, *, body: dict | None = None, params=None) -> dict:
    op = {"summary": summary, "responses": {**responses, **ERRORS}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "schema": schema, "description": description}


ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "sha256": {"type": "string"},
        "path": {"type": "string"},
        "original_filename": {"type": "string"},
        "given_label": {"type": ["string", "null"]},
        "predicted_label": {"type": ["string", "null"]},
        "strategy": {"type": ["string", "null"], "enum": [*STRATEGIES, None]},
        "rank_value": NUMBER_OR_NULL,
        "reason": {"type": "string", "description": "in words, why the item is in the queue"},
        "classes": {"type": "array", "items": {"type": "string"}},
        "mean": {"type": ["array", "null"], "items": {"type": "number"}},
        "std": {"type": ["array", "null"], "items": {"type": "number"}},
        **{name: NUMBER_OR_NULL for name in METRIC_FIELDS},
        "samples": {"type": ["integer", "null"], "description": "T, the MC samples used"},
        "lease_expires_at": {"type": ["string", "null"], "format": "date-time"},
        "labels": {"type": "array", "items": _ref("Label")},
    },
}
LABEL = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "image_id": {"type": "integer"},
        "user_id": {"type": "integer"},
        "label": {"type": ["string", "null"], "description": "null for an undo / void row"},
        "undoes_label_id": {"type": ["integer", "null"]},
        "reason": {"type": ["string", "null"]},
        "model_version_id": {"type": ["integer", "null"]},
        "labeled_at": {"type": "string", "format": "date-time"},
        "seconds": NUMBER_OR_NULL,
    },
}


def openapi_document() -> dict:
    strategy = {"type": "string", "enum": list(STRATEGIES), "default": "entropy"}
    item_answer = _json({"type": "object", "properties": {"item": _ref("Item")}}, "the item")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reviewer API",
            "version": "1",
            "description": "An uncertainty-based human review queue for image classifiers. "
            'Errors are {"error": message}.',
        },
        "security": [{"bearer": []}, {"session": [], "csrf": []}],
        "paths": {
            "/api/queue": {
                "get": _op(
                    "Unreviewed items in strategy order, a page at a time",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "strategy": strategy,
                                    "items": {"type": "array", "items": _ref("Item")},
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            },
                            "a page of items",
                        )
                    },
                    params=[
                        _query("strategy", strategy, "the ordering"),
                        _query(
                            "limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size"
                        ),
                        _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                        _query("predicted", {"type": "string"}, "only this predicted class"),
                        _query("given", {"type": "string"}, "only this given label"),
                    ],
                )
            },
            "/api/queue/next": {
                "post": _op(
                    "Lease the caller's next item of a strategy",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"item": {"oneOf": [_ref("Item"), {"type": "null"}]}},
                            },
                            'the leased item, or {"item": null} when the queue is empty',
                        )
                    },
                    body={"type": "object", "properties": {"strategy": strategy}},
                )
            },
            "/api/progress": {
                "get": _op(
                    "Reviewed / scored / total, and a pending version",
                    {"200": _json({"type": "object"}, "progress")},
                )
            },
            "/api/items/{id}": {
                "get": _op(
                    "One item, with the caller's label history",
                    {"200": item_answer},
                    params=[ITEM_ID],
                )
            },
            "/api/items/{id}/labels": {
                "post": _op(
                    "Label an item (releases its lease)",
                    {
                        "201": _json(
                            {"type": "object", "properties": {"label": _ref("Label")}},
                            "the new label row",
                        )
                    },
                    body={
                        "type": "object",
                        "required": ["label"],
                        "properties": {
                            "label": {
                                "type": "string",
                                "description": 'a class, "none_of_these" or "unsure"',
                            },
                            "seconds": {"type": "number", "description": "time spent on the item"},
                        },
                    },
                    params=[ITEM_ID],
                )
            },
            "/api/items/{id}/labels/undo": {
                "post": _op(
                    "Undo the caller's label; the item is leased back to them",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {"undo": _ref("Label"), "item": _ref("Item")},
                            },
                            "the undo row and the item",
                        )
                    },
                    params=[ITEM_ID],
                )
            },
            "/api/items/{id}/skip": {
                "post": _op(
                    "Skip an item (hidden from the caller for one lease period)",
                    {"200": _json({"type": "object"}, "skipped")},
                    params=[ITEM_ID],
                )
            },
            "/api/items/{id}/release": {
                "post": _op(
                    "Give a leased item back without labeling it",
                    {"200": _json({"type": "object"}, "released")},
                    params=[ITEM_ID],
                )
            },
            "/api/stats": {
                "get": _op(
                    "The dashboard's figures as JSON", {"200": _json({"type": "object"}, "figures")}
                )
            },
            "/api/images": {
                "post": {
                    "summary": "Upload one image (admins); validated like `reviewer ingest`",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {
                                        "file": {"type": "string", "format": "binary"},
                                        "given_label": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json({"type": "object"}, 'stored: {"image": ..., "created": true}'),
                        "200": _json({"type": "object"}, "the same bytes were already there"),
                        "413": _json(_ref("Error"), "over the byte or pixel limit"),
                        **ERRORS,
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3"}},
                }
            },
        },
        "components": {
            "schemas": {
                "Item": ITEM,
                "Label": LABEL,
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from `reviewer token NAME`",
                },
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            },
        },
    }
