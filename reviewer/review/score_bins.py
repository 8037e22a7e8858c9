"""Each version's scores counted in fine bins of three figures, kept in step with the writes.

Per version, figure (``confidence``, ``entropy``, ``mutual_info``) and fine bin of the
figure's value, ``score_bins`` holds the scores rows in the bin and what the figure's reader
needs of them (`KEPT`; the rest stay 0): for confidence (the certificate) the answered and the
wrong ones (the answer is not the prediction: another class, ``none_of_these``, ``unsure``, a
tie), for entropy (the yield) the judged ones (a class or ``none_of_these``) and the judged
wrong ones, for mutual information (a histogram) nothing more. The dashboard's histograms,
the certificate's pool counts and the yield read these few thousand rows instead of passing
over the pool, and read back only the rows of the few bins a threshold or a decile boundary
splits.

A bin is a range [lower edge, next edge) of explicit float edges (`edges`), so a bin counted
here in Python and a range read back in SQL (``value >= lo AND value < hi``) agree exactly; a
value below the first edge counts in the first bin, one past the last in the last, a missing
confidence as 0. Confidence bins are even in −log10(1 − confidence) up to 10 digits, with a
last bin of its own at exactly 1; entropy and mutual information bins are even on [0, log K),
``20 · 2^7`` of them, so the dashboard's 20 histogram bins over [0, log K / 2^j] are unions of
them for j ≤ 7.

A new scores row counts (``count_rows`` for a Core insert, an ORM flush by itself); a change
of its mirrored answer moves its counts (an attribute event on ``scores.human_label``);
deleting a version's scores deletes its bins (``forget_version``). The changes of a
transaction are summed in the session and written in key order just before it commits (after
every other write of it, so bins taken in one order cannot deadlock), and dropped with a
rollback. ``rebuild`` recounts every bin from the scores. The caller owns the
transaction.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict

import numpy as np
from sqlalchemy import and_, delete, event, inspect, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE

from reviewer.core import db, settings
from reviewer.core.schema import ModelVersion, Score, ScoreBins

FIGURES = ("confidence", "entropy", "mutual_info")
COUNTS = ("rows", "answered", "wrong", "judged", "judged_wrong")
# What each figure's reader needs (the certificate, the yield, a histogram); the rest stay 0,
# so a label changes no mutual-information bin (the first few hold most rows: hot ones).
KEPT = {
    "confidence": np.array([1, 1, 1, 0, 0]),
    "entropy": np.array([1, 0, 0, 1, 1]),
    "mutual_info": np.array([1, 0, 0, 0, 0]),
}
CONFIDENCE_BINS = 65536
CONFIDENCE_DIGITS = 10
HISTOGRAM_BINS = 20
HISTOGRAM_HALVINGS = 7  # the narrowest histogram spans log K / 2^7
UNCERTAINTY_BINS = HISTOGRAM_BINS * 2**HISTOGRAM_HALVINGS
_PENDING = "score_bins.pending"
A_ROW = np.array([1, 0, 0, 0, 0], dtype=np.int64)  # one scores row, before its answer

# The answer is not the version's prediction (NULL: nobody answered, neither right nor wrong).
WRONG = and_(
    Score.human_label.is_not(None),
    or_(Score.human_label.in_(settings.SPECIAL_LABELS), Score.human_label != Score.predicted_label),
)


def is_wrong(answer: str | None, predicted: str) -> bool:
    """`WRONG` for one row read into Python."""
    return answer is not None and (answer in settings.SPECIAL_LABELS or answer != predicted)


@functools.cache
def _all_edges(figure: str, classes: int) -> np.ndarray:
    if figure == "confidence":
        digits = np.arange(CONFIDENCE_BINS - 1) * (CONFIDENCE_DIGITS / (CONFIDENCE_BINS - 1))
        found = np.append(1.0 - 10.0**-digits, [1.0, math.inf])
    else:  # entropy and mutual information: at most log K (one class: the unit range)
        top = math.log(classes) if classes > 1 else 1.0
        found = np.arange(UNCERTAINTY_BINS + 1) * (top / UNCERTAINTY_BINS)
    found.flags.writeable = False
    return found


def edges(figure: str, classes: int) -> np.ndarray:
    """The lower edge of every bin of ``figure`` for a version of ``classes`` classes."""
    return _all_edges(figure, classes)[:-1]


def bin_range(figure: str, classes: int, b: int) -> tuple[float, float]:
    """[lo, hi) of bin ``b`` as SQL compares it: the first bin from −∞, the last to ∞."""
    found = _all_edges(figure, classes)
    lo = -math.inf if b == 0 else float(found[b])
    hi = math.inf if b == len(found) - 2 else float(found[b + 1])
    return lo, hi


def bins_of(figure: str, classes: int, values) -> np.ndarray:
    """The bin of each value (None counted as 0)."""
    found = np.asarray([0.0 if v is None else v for v in values], dtype=np.float64)
    lower = edges(figure, classes)
    return np.clip(np.searchsorted(lower, found, side="right") - 1, 0, len(lower) - 1)


def answer_counts(answer: str | None, predicted: str) -> np.ndarray:
    """(0, answered, wrong, judged, judged wrong) of one row's answer."""
    answered = answer is not None
    wrong = is_wrong(answer, predicted)
    judged = answered and answer != settings.UNSURE
    return np.array([0, answered, wrong, judged, judged and wrong], dtype=np.int64)


def _changes(session: Session) -> list:
    return session.info.setdefault(_PENDING, [])


def count_rows(session: Session, version_id: int, rows: list[dict]) -> None:
    """Count new scores rows of ``version_id`` written without the ORM (dicts with the
    figures and the prediction, nobody's answer yet)."""
    _changes(session).extend((version_id, *(r[f] for f in FIGURES), A_ROW) for r in rows)


@event.listens_for(Session, "after_flush")
def _count_new_scores(session: Session, _context) -> None:
    """A scores row the ORM adds counts, with the answer it was given."""
    for row in session.new:
        if isinstance(row, Score):
            change = answer_counts(row.human_label, row.predicted_label) + A_ROW
            _changes(session).append((row.model_version_id, *_figures(row), change))


@event.listens_for(Score.human_label, "set", active_history=True)
def _count_answer(row: Score, answer, previous, _initiator) -> None:
    """A stored row's mirrored answer changes: its counts move from the old answer."""
    state = inspect(row)
    if not state.persistent or answer == previous:
        return  # a new row counts when it is flushed, with the answer it has then
    previous = None if previous in (NO_VALUE, NEVER_SET) else previous
    change = answer_counts(answer, row.predicted_label)
    change -= answer_counts(previous, row.predicted_label)
    _changes(state.session).append((row.model_version_id, *_figures(row), change))


def _figures(row: Score) -> tuple:
    return tuple(getattr(row, f) for f in FIGURES)


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    session.flush()  # the rows the ORM still holds count too
    changes = session.info.pop(_PENDING, None)
    if not changes:
        return
    # From the identity map when the transaction has the version loaded (a label, a batch).
    classes = {v: len(session.get(ModelVersion, v).classes) for v in {c[0] for c in changes}}
    totals = new_totals()
    count_chunk(totals, changes, classes)
    db.add_counts(session, ScoreBins, as_rows(totals))


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous) -> None:
    session.info.pop(_PENDING, None)


def read(session: Session, version_id: int, figure: str, classes: int) -> np.ndarray:
    """[bins, 5]: the counts (COUNTS) of every bin of the version's ``figure``."""
    out = np.zeros((len(edges(figure, classes)), len(COUNTS)), dtype=np.int64)
    columns = [getattr(ScoreBins, name) for name in COUNTS]
    stmt = select(ScoreBins.bin, *columns).where(
        ScoreBins.model_version_id == version_id, ScoreBins.figure == figure
    )
    found = [tuple(row) for row in session.execute(stmt)]  # numpy reads tuples fast, not rows
    found = np.array(found, dtype=np.int64).reshape(-1, 1 + len(COUNTS))
    out[found[:, 0]] = found[:, 1:]
    return out


def histogram(rows: np.ndarray, classes: int, *, fit: bool) -> dict:
    """The dashboard's histogram of HISTOGRAM_BINS bins from the fine bins' rows: over
    [0, log K), or with ``fit`` over the narrowest [0, log K / 2^j) (j ≤ 7) holding every row."""
    halvings = 0
    if fit and rows.any():
        top = int(np.flatnonzero(rows)[-1])
        while halvings < HISTOGRAM_HALVINGS and top < len(rows) >> (halvings + 1):
            halvings += 1
    span = len(rows) >> halvings
    width = span // HISTOGRAM_BINS
    found = _all_edges("entropy", classes)
    return {
        "edges": found[: span + 1 : width].tolist(),
        "counts": rows[:span].reshape(HISTOGRAM_BINS, width).sum(axis=1).tolist(),
    }


def forget_version(session: Session, version_id: int) -> None:
    """The version's scores were deleted: so are its bins (those of this transaction too)."""
    session.flush()  # the rows the ORM still holds are counted, then forgotten with the rest
    changes = _changes(session)
    changes[:] = [change for change in changes if change[0] != version_id]
    session.execute(delete(ScoreBins).where(ScoreBins.model_version_id == version_id))


REBUILD_CHUNK = 50_000


def rebuild(session: Session) -> None:
    """Recount every version's bins from its scores rows (after a bulk load)."""
    session.flush()
    session.info.pop(_PENDING, None)  # in the rows recounted here
    session.execute(delete(ScoreBins))
    classes = {v: len(c) for v, c in session.execute(select(ModelVersion.id, ModelVersion.classes))}
    columns = (Score.model_version_id, *(getattr(Score, f) for f in FIGURES))
    stmt = select(*columns, Score.human_label, Score.predicted_label)
    totals = new_totals()
    result = session.execute(stmt.execution_options(yield_per=REBUILD_CHUNK))
    for chunk in result.partitions():
        count_chunk(totals, [recounted(row) for row in chunk], classes)
    rows = as_rows(totals)
    for start in range(0, len(rows), REBUILD_CHUNK):
        db.add_counts(session, ScoreBins, rows[start : start + REBUILD_CHUNK])


def recounted(row) -> tuple:
    """(version, confidence, entropy, mutual_info, human_label, predicted_label) as a
    `count_chunk` row: a stored row's counts."""
    return (*row[:4], answer_counts(row[4], row[5]) + A_ROW)


def new_totals() -> dict:
    """{(version, figure, bin): counts as a list of ints}, filled by `count_chunk`."""
    return {}


def as_rows(totals: dict) -> list[dict]:
    """``totals`` as score_bins rows in key order (the order every writer takes them), the
    keys whose counts are all zero left out."""
    return [
        dict(model_version_id=v, figure=f, bin=b, **dict(zip(COUNTS, c, strict=True)))
        for (v, f, b), c in sorted(totals.items())
        if any(c)
    ]


def count_chunk(totals: dict, chunk: list[tuple], classes: dict[int, int]) -> None:
    """Add rows (version, confidence, entropy, mutual_info, counts) to ``totals``
    {(version, figure, bin): counts}: the changes of a transaction, the recount of `rebuild`
    and of the migration. Summed per bin in numpy, then one list per bin (a batch of 256
    new rows touches about 700 bins)."""
    by_version = defaultdict(list)
    for row in chunk:
        by_version[row[0]].append(row)
    for version_id, rows in by_version.items():
        counts = np.array([row[4] for row in rows], dtype=np.int64).reshape(len(rows), -1)
        for i, figure in enumerate(FIGURES):
            found = bins_of(figure, classes[version_id], [row[1 + i] for row in rows])
            order = np.argsort(found, kind="stable")
            starts = np.concatenate([[0], np.flatnonzero(np.diff(found[order])) + 1])
            sums = np.add.reduceat(counts[order], starts, axis=0) * KEPT[figure]
            some = sums.any(axis=1)
            touched = zip(found[order][starts][some].tolist(), sums[some].tolist(), strict=True)
            for b, summed in touched:
                had = totals.get((version_id, figure, b))
                totals[version_id, figure, b] = (
                    summed if had is None else [x + y for x, y in zip(had, summed, strict=True)]
                )
