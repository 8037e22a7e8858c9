"""The dashboard's running tallies: per-labeler counts kept in step with the label history and
the score writes by reviewer.review.tallies, so the dashboard reads a few rows instead of
passing over every label (docs/architecture.md, the data model). Tables only, no queries.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from reviewer.core.schema import Base


class LabelerAnswers(Base):
    """Current labels per labeler and answer, kept in step by every change to the history
    (review.tallies): the dashboard's label counts without a pass over the labels."""

    __tablename__ = "labeler_answers"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(255), primary_key=True)
    labels: Mapped[int] = mapped_column(Integer, default=0)


class LabelerSeconds(Base):
    """Current timed labels per labeler and time in tenths of a second (rounded half up): the
    labeler's median time from a few rows (review.tallies)."""

    __tablename__ = "labeler_seconds"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tenths: Mapped[int] = mapped_column(Integer, primary_key=True)
    labels: Mapped[int] = mapped_column(Integer, default=0)


class LabelerAgreement(Base):
    """Per version and labeler: the labeler's current labels other than ``unsure`` on items
    the version scored (judged) and of those the version's prediction (matches), kept in step
    by the label history and the score writes (review.tallies)."""

    __tablename__ = "labeler_agreement"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    judged: Mapped[int] = mapped_column(Integer, default=0)
    matches: Mapped[int] = mapped_column(Integer, default=0)


class ScoreBins(Base):
    """Per version, figure (``confidence``, ``entropy``, ``mutual_info``) and fine bin of that
    figure's value: the version's scores rows in the bin and, of them, the answered ones, the
    wrong ones (the answer is not the prediction), the judged ones (a class or
    ``none_of_these``) and the judged wrong ones; kept in step by the score writes and the
    mirrored answers (review.score_bins)."""

    __tablename__ = "score_bins"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    figure: Mapped[str] = mapped_column(String(16), primary_key=True)
    bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    wrong: Mapped[int] = mapped_column(Integer, default=0)
    judged: Mapped[int] = mapped_column(Integer, default=0)
    judged_wrong: Mapped[int] = mapped_column(Integer, default=0)
