"""`reviewer export`: layout, consensus, manifests, report, --since last, refusal, crash safety."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from reviewer import export
from reviewer.core import db
from reviewer.core.schema import Export, Label, ModelVersion, Score
from reviewer.export import dataset as export_dataset_module
from reviewer.export import files as export_files
from tests.support.exports import CLASSES, give
from tests.support.images import png_bytes
from tests.support.pool import add_version


def read_manifests(out: Path):
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return rows, [json.loads(line) for line in lines]


def as_csv(record: dict) -> dict:
    """How a JSONL record reads back from the CSV (every cell a string)."""
    cells = {k: "" if v is None else str(v) for k, v in record.items()}
    return {**cells, "labelers": ";".join(record["labelers"])}


def test_export_layout_manifests_and_report(run_cli, sessions, pool, tmp_path):
    out = tmp_path / "exports" / "one"
    result = run_cli("export", out)
    assert result.exit_code == 0, result.output
    assert "exported 5 items" in result.output
    sha = pool["sha"]
    assert sorted(p.name for p in out.iterdir()) == [
        "audit",  # the random audit's labels, held out of training (none here)
        "images",
        "manifest.csv",
        "manifest.jsonl",
        "none_of_these",
        "report.txt",
    ]
    assert sorted(p.name for p in (out / "images").iterdir()) == CLASSES  # every class, even empty
    assert not list((out / "audit").rglob("*.png"))
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert files == sorted(
        [
            f"images/3/{sha[0]}.png",
            f"none_of_these/{sha[3]}.png",
            f"images/2/{sha[5]}.png",
            f"images/8/{sha[6]}.png",
            f"images/7/{sha[7]}.png",
        ]
    )
    assert [p.name for p in out.parent.iterdir()] == ["one"]  # no temporary siblings left
    assert (out / f"images/3/{sha[0]}.png").read_bytes() == png_bytes(0)  # PNGs copied as-is
    with PILImage.open(out / f"images/7/{sha[7]}.png") as converted:
        assert converted.format == "PNG" and converted.size == (28, 28)

    rows, records = read_manifests(out)
    assert rows == [as_csv(record) for record in records]
    by_sha = {record["sha256"]: record for record in records}
    first, score = by_sha[sha[0]], pool["scores"][0]
    assert first["file"] == f"images/3/{sha[0]}.png" and first["label"] == "3"
    assert first["labelers"] == ["a", "b"] and first["n_labels"] == 2
    assert first["agreement"] == 1.0 and first["given_label"] == "3"
    assert first["model_version"] == "digits:1"
    assert first["predicted_label"] == score.predicted_label
    assert first["entropy"] == pytest.approx(score.entropy)
    assert first["ood"] == pytest.approx(score.ood)
    assert first["labeled_at"].endswith("+00:00")
    assert {record["source"] for record in records} == {"human"}
    assert {record["threshold"] for record in records} == {None}
    voided_out = by_sha[sha[5]]
    assert voided_out["labelers"] == ["a", "b"] and voided_out["label"] == "2"
    assert by_sha[sha[6]]["labelers"] == ["a"] and by_sha[sha[6]]["label"] == "8"
    assert by_sha[sha[3]]["file"] == f"none_of_these/{sha[3]}.png"

    report = (out / "report.txt").read_text()
    assert "  3: 1\n" in report and "  4: 0\n" in report and "none_of_these: 1" in report
    assert "left out: 3" in report
    ids = pool["ids"]
    assert f"image {ids[1]} {sha[1]}: tie (a: 3, b: 5)" in report
    assert f"image {ids[2]} {sha[2]}: unsure" in report
    assert f"image {ids[4]} {sha[4]}: voided by an admin" in report
    assert sha[8] not in report  # unlabeled: not in scope at all
    with sessions() as s:
        row = s.scalar(select(Export))
        assert row.item_count == 5 and row.path == str(out)
        assert row.label_watermark == s.scalar(select(func.max(Label.id)))


def test_include_unsure_writes_it_outside_images(run_cli, pool, tmp_path):
    out = tmp_path / "out"
    assert run_cli("export", out, "--include-unsure").exit_code == 0
    assert (out / "unsure" / f"{pool['sha'][2]}.png").is_file()
    _, records = read_manifests(out)
    assert any(record["label"] == "unsure" for record in records)
    assert not (out / "images" / "unsure").exists()


def test_since_last_exports_only_new_labels(run_cli, sessions, pool, tmp_path):
    assert run_cli("export", tmp_path / "first").exit_code == 0
    ids, users = pool["ids"], pool["users"]
    with db.write_transaction(sessions) as s:
        # A new model version is active when the new labels are given.
        s.execute(ModelVersion.__table__.update().values(is_active=False))
        v2 = add_version(s, version=2)
        old = pool["scores"][8]
        s.add(
            Score(
                image_id=ids[8],
                model_version_id=v2.id,
                predicted_label="6",
                mean=old.mean,
                std=old.std,
                entropy=0.5,
                expected_entropy=0.1,
                mutual_info=0.4,
                variance=0.01,
                variation_ratio=0.1,
                margin=0.2,
                samples=20,
            )
        )
    give(sessions, ids[1], users["d"], "5")  # breaks the tie: 5 wins 2:1
    give(sessions, ids[8], users["a"], "6")
    result = run_cli("export", tmp_path / "second", "--since", "last")
    assert result.exit_code == 0, result.output
    _, records = read_manifests(tmp_path / "second")
    by_sha = {record["sha256"]: record for record in records}
    assert sorted(by_sha) == sorted([pool["sha"][1], pool["sha"][8]])
    assert by_sha[pool["sha"][1]]["agreement"] == pytest.approx(0.666667)
    # The winning labels' latest row (d's "5") was given under v2, which never scored item 1.
    assert by_sha[pool["sha"][1]]["model_version"] == "digits:2"
    assert by_sha[pool["sha"][1]]["predicted_label"] is None
    assert by_sha[pool["sha"][8]]["model_version"] == "digits:2"
    assert by_sha[pool["sha"][8]]["entropy"] == 0.5
    nothing_new = run_cli("export", tmp_path / "third", "--since", "last")
    assert nothing_new.exit_code == 1
    assert "nothing new since the last export at" in nothing_new.output
    assert str(tmp_path / "second") in nothing_new.output
    assert not (tmp_path / "third").exists()  # nothing written, no export recorded
    everything = run_cli("export", tmp_path / "fourth")
    assert "exported 7 items" in everything.output
    with sessions() as s:
        marks = list(s.scalars(select(Export.label_watermark).order_by(Export.id)))
    assert marks[0] < marks[1] == marks[2] and len(marks) == 3


def test_refuses_a_non_empty_out_unless_forced(run_cli, sessions, pool, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert run_cli("export", out).exit_code == 0  # an empty folder is fine
    again = run_cli("export", out)
    assert again.exit_code != 0 and "is not empty" in again.output and "--force" in again.output
    (out / "marker").write_text("old")
    forced = run_cli("export", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert not (out / "marker").exists() and (out / "manifest.jsonl").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    refused = run_cli("export", precious, "--force")
    assert refused.exit_code != 0 and "does not look like an export" in refused.output
    assert (precious / "thesis.txt").read_text() == "keep me"
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Export)) == 2


def test_a_crash_mid_export_leaves_no_out_and_no_row(sessions, pool, tmp_path, monkeypatch):
    real, calls = export_files.write_file, []

    def crash_on_third(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(export_dataset_module, "write_file", crash_on_third)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        with db.write_transaction(sessions) as s:
            export.export_dataset(s, pool["store"], out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    # With --force, a crash keeps the previous export whole.
    monkeypatch.setattr(export_dataset_module, "write_file", real)
    with db.write_transaction(sessions) as s:
        first = export.export_dataset(s, pool["store"], out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    calls.clear()
    monkeypatch.setattr(export_dataset_module, "write_file", crash_on_third)
    with pytest.raises(OSError), db.write_transaction(sessions) as s:
        export.export_dataset(s, pool["store"], out, force=True)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    with sessions() as s:
        assert list(s.scalars(select(Export.id))) == [first.export_id]


def test_function_api_result(sessions, pool, tmp_path):
    with db.write_transaction(sessions) as s:
        result = export.export_dataset(s, pool["store"], tmp_path / "out", include_unsure=True)
    assert result.counts == {"3": 1, "2": 1, "8": 1, "7": 1, "none_of_these": 1, "unsure": 1}
    assert result.item_count == 6 and result.path == tmp_path / "out"
    reasons = {image_id: reason for image_id, _, reason in result.left_out}
    assert set(reasons) == {pool["ids"][1], pool["ids"][4]}
    with pytest.raises(ValueError, match="since must be one of"), sessions() as s:
        export.export_dataset(s, pool["store"], tmp_path / "x", since="yesterday")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_keras_reads_the_images_folder(run_cli, pool, tmp_path):
    import keras

    out = tmp_path / "out"
    assert run_cli("export", out).exit_code == 0
    data = keras.utils.image_dataset_from_directory(
        out / "images", color_mode="grayscale", image_size=(28, 28), batch_size=2, shuffle=False
    )
    assert data.class_names == CLASSES
    counts = [0] * len(CLASSES)
    for images, labels in data:
        assert tuple(images.shape[1:]) == (28, 28, 1)
        for label in labels.numpy():
            counts[int(label)] += 1
    expected = {"3": 1, "2": 1, "8": 1, "7": 1}  # the labels given, after consensus
    assert counts == [expected.get(name, 0) for name in CLASSES]
