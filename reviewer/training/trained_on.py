"""A user's statement of what a registered model trained on: the file ``register
--trained-on FILE`` reads.

The statement names images by the sha256 of their file (the export's manifest and the API's
items show it): one per line (blank lines and ``#`` comments skipped), or a CSV
with a ``sha256`` column, such as an export's ``manifest.csv``. An empty statement says the
model trained on none of the pool. The certificate leaves the named images out of the audit.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from reviewer.training.errors import TrainingError

_SHA256 = re.compile(r"[0-9a-f]{64}")


def read_statement(path: Path) -> list[str]:
    """The sorted sha256 values of statement ``path``; TrainingError naming the line of the
    first value that is not a sha256."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainingError(f"--trained-on {path}: cannot read it ({exc})") from exc
    first = text.lstrip().split("\n", 1)[0]
    if "sha256" in first.split(","):
        rows = csv.DictReader(io.StringIO(text))
        values = [(n, row.get("sha256") or "") for n, row in enumerate(rows, start=2)]
    else:
        values = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
        values = [(n, v) for n, v in values if v and not v.startswith("#")]
    for number, value in values:
        if not _SHA256.fullmatch(value.lower()):
            raise TrainingError(
                f"--trained-on {path}: line {number}: {value[:80]!r} is not a sha256 "
                "(64 hexadecimal digits)"
            )
    return sorted({value.lower() for _, value in values})
