"""An item as the CLI, the API and the UI show it: one dictionary with fixed keys.

This module owns the item keys of docs/architecture.md (``id``, ``sha256``, ``path``,
``original_filename``, ``given_label``, ``predicted_label``, ``strategy``, ``rank_value``, every
uncertainty metric, ``samples``) and the plain columns the queue reads to build one, so the
hot path reads Core rows instead of ORM objects.
"""

from __future__ import annotations

from reviewer.core import strategies
from reviewer.core.schema import Image, ModelVersion, Score
from reviewer.core.versions import version_name
from reviewer.ml.uncertainty import METRICS

# What item_dict reads, as plain columns: a Core row is much cheaper than two ORM objects.
IMAGE_COLUMNS = (
    Image.id,
    Image.sha256,
    Image.path,
    Image.original_filename,
    Image.given_label,
    Image.label_count,
)
SCORE_COLUMNS = (
    Score.image_id,
    Score.predicted_label,
    Score.mean,
    Score.std,
    *(getattr(Score, name) for name in METRICS),
    Score.samples,
)
ITEM_COLUMNS = IMAGE_COLUMNS + SCORE_COLUMNS[1:]


def item_dict(
    image,
    score,
    version: ModelVersion | None,
    *,
    strategy: str | None = None,
    rank_value: float | None = None,
) -> dict:
    """An item with the keys docs/architecture.md fixes for the CLI, the API and the UI.

    ``image`` and ``score`` are ORM objects, rows of ``IMAGE_COLUMNS`` and ``SCORE_COLUMNS``,
    or both one row of ``ITEM_COLUMNS``.
    """
    item = {
        "id": image.id,
        "sha256": image.sha256,
        "path": image.path,
        "original_filename": image.original_filename,
        "given_label": image.given_label,
        "predicted_label": score.predicted_label if score else None,
        "strategy": strategy,
        "rank_value": rank_value,
        "mean": score.mean if score else None,
        "std": score.std if score else None,
        **{name: getattr(score, name) if score else None for name in METRICS},
        "samples": score.samples if score else None,
        "classes": list(version.classes) if version else [],
        "model_version": version_name(version) if version else None,
        "label_count": image.label_count,
    }
    if strategy is not None:
        item["reason"] = strategies.reason(strategy, rank_value, image.given_label)
    return blind(item) if strategy == strategies.AUDIT else item


def rank_value(strategy: str, score) -> float | None:
    """The item's own value of the first column ``strategy`` orders by."""
    return getattr(score, strategies.BY_KEY[strategy].columns[0], None) if score else None


def with_reason(item: dict, strategy: str | None, score, *, by_hand: str | None = None) -> dict:
    """``item`` with the reason of the strategy that handed it out (``strategy``), worded from
    the item's own numbers; an item no strategy handed out but that the user opened from
    ``by_hand``'s queue says so, with its own value in that queue (`opened_by_hand`)."""
    if strategy == strategies.AUDIT:
        return blind(item)
    how = strategy or by_hand
    if how is None or score is None:
        return item
    value = rank_value(how, score)
    if strategy is None:
        text = opened_by_hand(how, value)
    else:
        text = strategies.reason(how, value, item["given_label"])
    return {**item, "strategy": strategy, "rank_value": value, "reason": text}


def opened_by_hand(queue: str, value: float | None) -> str:
    """The reason of an item the user opened themselves from ``queue``'s list: its own rank
    value, without the strategy's wording (the item need not be near that queue's top)."""
    shown = strategies.rank_text(queue, value)
    return f"You opened this item from the {queue} queue" + (
        f" ({queue} {shown})." if shown else "."
    )


# What an audit item does not show: anchoring on the model's answer (or on a given label it
# may have learned) would bias the audit towards agreeing with it.
BLIND_KEYS = ("predicted_label", "given_label", "mean", "std", "rank_value", *METRICS)


def blind(item: dict) -> dict:
    """``item`` as the random audit shows it: no prediction, no scores, no given label,
    ``blind`` True."""
    return {
        **item,
        **dict.fromkeys(BLIND_KEYS),
        "strategy": strategies.AUDIT,
        "reason": strategies.reason(strategies.AUDIT, 0.0, None),
        "blind": True,
    }
