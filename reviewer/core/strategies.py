"""The strategy table: every ordering the review queue offers, in one place.

Each row says which scores columns a strategy orders by (image id breaks ties), in which
direction, which rows it leaves out, what it means (the strategy menu's description) and why an
item is in it (the reason shown beside the item, worded from that item's own rank value).
Everything else derives from this table: the queue's SQL (:mod:`reviewer.review.ranking`), the
queue indexes of the schema, the CLI's and the API's choices, the OpenAPI enum and the UI's
menu. Plain data: it imports nothing of reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass

# The `batchbald` strategy's key: BATCH_KEY_BASE - p for the item at place p (0 first) of the
# version's current BatchBALD batch, else the item's mutual_info (at most ln K, far below it).
BATCH_KEY_BASE = 1_000_000.0


@dataclass(frozen=True)
class Strategy:
    """One row of the strategy table."""

    key: str
    columns: tuple[str, ...]  # scores columns, in sort order; the first is the rank value
    descending: bool
    description: str
    reason: str  # str.format with value (the rank value), given_label and place
    not_null: bool = False  # rows whose first column is NULL are left out
    reason_outside_batch: str | None = None  # batchbald: an item that is not in the batch


TABLE = (
    Strategy(
        "entropy",
        ("entropy",),
        True,
        "highest entropy first: the prediction is spread over several classes",
        "entropy {value:.2f}: the prediction is spread over several classes",
    ),
    Strategy(
        "bald",
        ("mutual_info",),
        True,
        "highest mutual information (BALD) first: the model's samples disagree",
        "BALD {value:.2f}: the model's samples disagree",
    ),
    Strategy(
        "batchbald",
        ("batchbald_key",),
        True,
        "the worker's BatchBALD batch first, items that are informative together rather than "
        "alike; then BALD's order",
        "place {place} of the BatchBALD batch: informative together with the rest of the batch",
        reason_outside_batch="BALD {value:.2f}: not in the BatchBALD batch",
    ),
    Strategy(
        "variance",
        ("variance",),
        True,
        "highest variance first: the winning class's probability swings between samples",
        "variance {value:.3f}: the top class's probability swings between samples",
    ),
    Strategy(
        "margin",
        ("margin",),
        False,
        "smallest margin first: the top two classes are close",
        "margin {value:.2f}: the top two classes are close",
    ),
    Strategy(
        "variation_ratio",
        ("variation_ratio", "entropy"),
        True,
        "highest variation ratio first: samples vote for different classes",
        "variation ratio {value:.2f}: samples vote for different classes",
    ),
    Strategy(
        "mislabeled",
        ("self_confidence",),
        False,
        "lowest self-confidence first: the given label is probably wrong",
        "self-confidence {value:.2f}: the model doubts the given label {given_label!r}",
        not_null=True,
    ),
    Strategy(
        "ood",
        ("ood",),
        True,
        "highest OOD score first: unlike the images the model was trained on",
        "OOD {value:.2f}: unlike the images the model was trained on",
        not_null=True,
    ),
    Strategy(
        "random",
        ("random_key",),
        False,
        "a seeded shuffle: the baseline every strategy is measured against",
        "random pick: the baseline",
    ),
    Strategy(
        "audit",
        ("audit_key",),
        False,
        "the random audit, shown blind: measures the model's error rate for certified auto-accept",
        "random audit: measures the model's error rate",
        not_null=True,
    ),
)
AUDIT = "audit"  # the strategy whose items are shown blind (no prediction, no default)
BY_KEY = {strategy.key: strategy for strategy in TABLE}
STRATEGIES = tuple(BY_KEY)
DESCRIPTIONS = {row.key: row.description for row in TABLE}
DEFAULT = "entropy"


def batch_place(batchbald_key: float) -> int | None:
    """1 for the first item of the BatchBALD batch, 2 for the next, ...; None outside it."""
    if batchbald_key <= BATCH_KEY_BASE / 2:
        return None
    return round(BATCH_KEY_BASE - batchbald_key) + 1


def unknown(strategy) -> str:
    """The message for a strategy that is not in the table."""
    return f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}"


def reason(strategy: str, value: float | None, given_label: str | None) -> str:
    """Why an item is in ``strategy``'s queue, from its own rank value."""
    if value is None:
        return ""
    row = BY_KEY[strategy]
    place = batch_place(value) if strategy == "batchbald" else None
    text = row.reason_outside_batch if row.reason_outside_batch and place is None else row.reason
    return text.format(value=value, given_label=given_label, place=place)


def rank_text(strategy: str, value: float | None) -> str:
    """A rank value as the queue page shows it (a BatchBALD batch place as "batch #p")."""
    if value is None:
        return ""
    place = batch_place(value) if strategy == "batchbald" else None
    return f"batch #{place}" if place else f"{value:.3f}"


def queue_indexes() -> dict[str, tuple[str, ...]]:
    """{first sort column: sort columns} of every strategy: the schema's queue indexes."""
    return {row.columns[0]: row.columns for row in TABLE}
