"""Project settings stored in the database (the ``settings`` table).

This module owns the class list, the labels wanted per item, and the settings of certified
auto-accept (the risk target α, the confidence 1 − δ, the audit rate): how they are read,
validated and changed (`EDITABLE` names the ones people change). It also owns what "labels
per item" means for the queue: an item needs review while it has fewer current labels than
that (`needs_review`), and changing the setting recomputes ``scores.needs_review`` in the same
transaction. Functions take a session; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reviewer.core.schema import Image, Score, Setting
from reviewer.core.text import printable

CLASSES = "classes"
LABELS_PER_ITEM = "labels_per_item"
RISK_TARGET = "risk_target"  # α: the error rate the auto-accepted labels may have at most
RISK_CONFIDENCE = "risk_confidence"  # 1 − δ: how sure the certificate is of it
AUDIT_RATE = "audit_rate"  # the share of every other strategy's handouts sent to the audit
DEFAULTS = {
    CLASSES: [],
    LABELS_PER_ITEM: 1,
    RISK_TARGET: 0.05,
    RISK_CONFIDENCE: 0.95,
    AUDIT_RATE: 0.05,
}
# Labels a labeler may give besides the classes.
NONE_OF_THESE = "none_of_these"
UNSURE = "unsure"
SPECIAL_LABELS = (NONE_OF_THESE, UNSURE)
# How the UI words the special answers (the stored values stay as they are).
SPECIAL_LABEL_NAMES = {NONE_OF_THESE: "None of these", UNSURE: "Unsure"}
MAX_CLASS_NAME_LENGTH = 255
MAX_LABELS_PER_ITEM = 100


def get(session: Session, key: str):
    row = session.get(Setting, key)
    return DEFAULTS[key] if row is None else row.value


def put(session: Session, key: str, value) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value


def parse_classes(text: str | Iterable[str]) -> list[str]:
    """Validate a class list given as ``"a,b,c"`` or a sequence of names."""
    names = (
        [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n) for n in text]
    )
    if not names or names == [""]:
        raise ValueError("the class list is empty")
    problems = []
    for name in names:
        if not name:
            problems.append("an empty class name")
        elif name in SPECIAL_LABELS:
            problems.append(f"{name!r} is reserved (a labeler's answer, not a class)")
        elif len(name) > MAX_CLASS_NAME_LENGTH or set(name) & set("/\\") or printable(name) != name:
            problems.append(
                f"{name!r} is not a usable class name (no slashes or control characters)"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"duplicate class names: {', '.join(duplicates)}")
    if problems:
        raise ValueError("invalid class list: " + "; ".join(problems))
    return names


def get_classes(session: Session) -> list[str]:
    return list(get(session, CLASSES))


def set_classes(session: Session, classes: str | Iterable[str]) -> list[str]:
    names = parse_classes(classes)
    put(session, CLASSES, names)
    return names


def check_label(label: str, classes: list[str], *, allow_special: bool = False) -> str:
    """Return ``label`` if it is a class (or a special answer when allowed), else raise."""
    if label in classes or (allow_special and label in SPECIAL_LABELS):
        return label
    if not classes:
        raise ValueError(
            f"label {label!r} cannot be checked: no class list is set "
            "(run `reviewer classes set ...`)"
        )
    hint = did_you_mean(label, classes)
    raise ValueError(
        f"label {label!r} is not in the class list ({', '.join(classes)})"
        + (f": did you mean {hint!r}?" if hint else "")
    )


def did_you_mean(name: str, classes: list[str]) -> str | None:
    """The class ``name`` probably meant: the same name in another case, else a close one."""
    import difflib

    same = [c for c in classes if c.casefold() == str(name).casefold()]
    if same:
        return same[0]
    close = difflib.get_close_matches(str(name), classes, n=1, cutoff=0.75)
    return close[0] if close else None


def get_labels_per_item(session: Session) -> int:
    return int(get(session, LABELS_PER_ITEM))


def needs_review(label_count: int, labels_per_item: int) -> bool:
    """Whether an item with ``label_count`` current labels still goes to labelers."""
    return label_count < labels_per_item


def set_labels_per_item(session: Session, value: int) -> None:
    """Change labels per item and recompute ``needs_review`` on every scores row."""
    if not 1 <= int(value) <= MAX_LABELS_PER_ITEM:
        raise ValueError(
            f"labels per item must be between 1 and {MAX_LABELS_PER_ITEM}, got {value}"
        )
    put(session, LABELS_PER_ITEM, int(value))
    session.flush()
    count = select(Image.label_count).where(Image.id == Score.image_id).scalar_subquery()
    stmt = update(Score).values(needs_review=needs_review(count, int(value)))
    session.execute(stmt.execution_options(synchronize_session=False))


def get_risk_target(session: Session) -> float:
    return float(get(session, RISK_TARGET))


def set_risk_target(session: Session, value: float) -> None:
    put(session, RISK_TARGET, _rate("the risk target", value, zero_ok=False))


def _rate(name: str, value, *, zero_ok: bool) -> float:
    number = float(value)
    low_ok = number >= 0.0 if zero_ok else number > 0.0
    if not (low_ok and number < 1.0):  # also refuses NaN
        bounds = "at least 0" if zero_ok else "above 0"
        raise ValueError(f"{name} must be {bounds} and below 1, got {value}")
    return number


def get_risk_confidence(session: Session) -> float:
    return float(get(session, RISK_CONFIDENCE))


def set_risk_confidence(session: Session, value: float) -> None:
    put(session, RISK_CONFIDENCE, _rate("the risk confidence", value, zero_ok=False))


def get_audit_rate(session: Session) -> float:
    return float(get(session, AUDIT_RATE))


def set_audit_rate(session: Session, value: float) -> None:
    put(session, AUDIT_RATE, _rate("the audit rate", value, zero_ok=True))


# The settings `reviewer settings` and the admin page change: name -> (read, parse and write).
EDITABLE = {
    LABELS_PER_ITEM: (get_labels_per_item, lambda s, v: set_labels_per_item(s, int(v))),
    RISK_TARGET: (get_risk_target, lambda s, v: set_risk_target(s, float(v))),
    RISK_CONFIDENCE: (get_risk_confidence, lambda s, v: set_risk_confidence(s, float(v))),
    AUDIT_RATE: (get_audit_rate, lambda s, v: set_audit_rate(s, float(v))),
}


def set_by_name(session: Session, name: str, text: str) -> None:
    """Parse ``text`` and set the setting ``name``; ValueError naming the problem."""
    if name not in EDITABLE:
        raise ValueError(f"unknown setting {name!r}: choose one of {', '.join(EDITABLE)}")
    try:
        EDITABLE[name][1](session, text)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name}: {exc}") from None
