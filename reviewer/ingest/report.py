"""What an ingest run reports: counts, rejected files with their reasons, warnings; and the
error that stops a whole run before anything changes."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field


class IngestError(ValueError):
    """Input that stops the whole ingest before anything is changed."""


class NoSpaceLeft(IngestError):
    """The image store or the database ran out of space: the batch in hand was rolled back
    (its rows and its files); the batches before it stay."""


@dataclass
class IngestReport:
    added: int = 0
    already_present: int = 0
    labels_updated: int = 0
    skipped: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"added: {self.added}",
            f"already present: {self.already_present}",
            f"labels updated: {self.labels_updated}",
            f"skipped (no image extension): {self.skipped}",
            f"rejected: {len(self.rejected)}"
            + (f" ({self.reason_summary()})" if self.rejected else ""),
        ]
        out += [f"  {name}: {reason}" for name, reason in self.rejected]
        out += [f"warning: {w}" for w in self.warnings]
        return out

    def reason_summary(self) -> str:
        """How many files each kind of reason rejected, most first ("2 no such file, ...")."""
        kinds = Counter(reason_kind(reason) for _, reason in self.rejected)
        return ", ".join(f"{count} {kind}" for kind, count in kinds.most_common())


def reason_kind(reason: str) -> str:
    """A rejection reason without its particulars: no CSV line, no quoted value, no detail
    after the first colon ("label … is not in the class list")."""
    reason = re.sub(r"^\S+ line \d+: ", "", reason)  # a CSV row's place
    reason = re.sub(r"'[^']*'", "…", reason)
    return reason.split(":")[0].split(" (")[0].strip()
