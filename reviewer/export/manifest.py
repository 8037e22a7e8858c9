"""What an export says about itself: one record per item (file, label, labelers, agreement,
given label, the version active at labeling time with its prediction and every metric), the
CSV and JSON Lines manifests, and report.txt."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

from reviewer.core import settings
from reviewer.core.schema import as_utc, utcnow
from reviewer.core.versions import version_name
from reviewer.export.files import MARKER, write_file
from reviewer.ml.uncertainty import METRICS

HUMAN, AUDIT, MODEL = "human", "audit", "model"  # where an exported label comes from
FIELDS = (
    "file",
    "image_id",
    "sha256",
    "label",
    "source",
    "labelers",
    "n_labels",
    "agreement",
    "given_label",
    "model_version",
    "predicted_label",
    *METRICS,
    "threshold",
    "labeled_at",
)


def iso(moment: datetime) -> str:
    return as_utc(moment).isoformat()


def record(image, given, winner, folder, versions, scores, *, source: str = HUMAN) -> dict:
    """A human-labeled item (``source`` human, or audit for the audit set's)."""
    winning = [label for label, _ in given if label.label == winner]
    version = versions.get(winning[-1].model_version_id)
    score = scores.get((image.id, version.id)) if version else None
    return {
        "file": f"{folder}/{image.sha256}.png",
        "image_id": image.id,
        "sha256": image.sha256,
        "label": winner,
        "source": source,
        "labelers": [name for _, name in given],
        "n_labels": len(given),
        "agreement": round(len(winning) / len(given), 6),
        "given_label": image.given_label,
        "model_version": version_name(version) if version else None,
        "predicted_label": score.predicted_label if score else None,
        **{metric: getattr(score, metric) if score else None for metric in METRICS},
        "threshold": None,
        "labeled_at": iso(max(label.labeled_at for label, _ in given)),
    }


def model_record(image, score, version, threshold: float) -> dict:
    """An auto-accepted item: the model's label under the certificate."""
    return {
        "file": f"auto/{score.predicted_label}/{image.sha256}.png",
        "image_id": image.id,
        "sha256": image.sha256,
        "label": score.predicted_label,
        "source": MODEL,
        "labelers": [],
        "n_labels": 0,
        "agreement": None,
        "given_label": image.given_label,
        "model_version": version_name(version),
        "predicted_label": score.predicted_label,
        **{metric: getattr(score, metric) for metric in METRICS},
        "threshold": threshold,
        "labeled_at": None,
    }


def write_manifests(work: Path, records: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        cells = {k: "" if v is None else v for k, v in record.items()}
        writer.writerow({**cells, "labelers": ";".join(record["labelers"])})
    write_file(work / "manifest.csv", text.getvalue().encode())
    lines = "".join(json.dumps(record, sort_keys=False) + "\n" for record in records)
    write_file(work / MARKER, lines.encode())


def report_text(result, classes: list[str], since: str, after: int) -> str:
    lines = [
        f"reviewer export, {iso(utcnow())}",
        f"since: {since} (label rows with {after} < id <= {result.watermark})",
        f"items: {result.item_count}",
        "# class order of the project (pass it as class_names= to Keras, "
        "which otherwise sorts folder names):",
        ",".join(classes),
        "per class:",
    ]
    lines += [f"  {name}: {result.counts.get(name, 0)}" for name in classes]
    lines += [
        f"{name}: {result.counts[name]}"
        for name in settings.SPECIAL_LABELS
        if name in result.counts
    ]
    lines += [f"{source} labels: {n}" for source, n in sorted(result.sources.items())]
    if result.auto is not None:
        lines += ["certified auto-accept:", *[f"  {line}" for line in result.auto_lines]]
    lines.append(f"left out: {len(result.left_out)}")
    lines += [f"  image {i} {sha}: {reason}" for i, sha, reason in result.left_out]
    return "\n".join(lines) + "\n"
