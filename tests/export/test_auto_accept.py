"""Certified auto-accept end to end, with a fixed seed: a labeler answers the random audit
(and a few queue items) with the truth through the API; the certificate is read from the API
and the CLI; ``export --auto-accept`` writes the audit apart and the model's labels under
auto/, and ``train --from-export`` reads neither unless asked. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json

import pytest
from sqlalchemy import select

from reviewer.core import db, settings, users
from reviewer.core.files import FileStore
from reviewer.core.schema import Image, ModelVersion, Score, User
from reviewer.review import audit
from reviewer.review import labels as label_history
from reviewer.training.retrain import read_export
from tests.support.audit import add_audited_pool

N, AUDITED, QUEUED = 2000, 300, 20


@pytest.fixture
def pool(config, sessions):
    """The scored pool, its truth and a labeler's API token."""
    with db.write_transaction(sessions) as s:
        settings.set_classes(s, [str(d) for d in range(10)])
        settings.set_audit_rate(s, 0.0)
        truth = add_audited_pool(s, FileStore(config.data_dir), N, seed=3)
        _, secret = users.create_token(s, users.create_user(s, "lee", "lee-password"))
    return truth, {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def audited(pool, client):
    """The labeler's answers through the API: QUEUED entropy items, then AUDITED audit items."""
    truth, bearer = pool
    before = client.get("/api/auto-accept", headers=bearer).get_json()
    for strategy, count in (("entropy", QUEUED), ("audit", AUDITED)):
        for _ in range(count):
            item = client.post("/api/queue/next", json={"strategy": strategy}, headers=bearer)
            item = item.get_json()["item"]
            assert item["strategy"] == strategy and ("blind" in item) == (strategy == "audit")
            label = {"label": truth[item["id"]]}
            response = client.post(f"/api/items/{item['id']}/labels", json=label, headers=bearer)
            assert response.status_code == 201, response.get_data(as_text=True)
    return {"truth": truth, "bearer": bearer, "before": before}


def test_audit_answers_certify_and_export_the_model_labels(
    audited, client, sessions, run_cli, tmp_path
):
    """One test for both halves: answering the audit through the API is the slow part."""
    cert = check_certificate(audited, client, sessions, run_cli)
    check_export(audited, cert, sessions, run_cli, tmp_path / "out")


def check_certificate(audited, client, sessions, run_cli) -> dict:
    before = audited["before"]
    assert before["threshold"] is None and before["audit"] == 0
    assert before["reason"].startswith("too few audit labels: about ")
    cert = client.get("/api/auto-accept", headers=audited["bearer"]).get_json()
    assert cert["threshold"] is not None and cert["bound"] <= cert["risk"] == 0.05
    assert cert["confidence"] == 0.95 and cert["reason"] == "certified"
    assert cert["audit"] >= AUDITED  # the walk also passed queue labels it reached
    assert (cert["pool"], cert["unlabeled"]) == (N, N - AUDITED - QUEUED)
    with sessions() as s:
        version = s.scalar(select(ModelVersion))
        accepted = audit.accepted_images(s, version, cert["threshold"])
        labeled = {i for (i,) in s.execute(select(Image.id).where(Image.label_count > 0))}
    assert len(accepted) == cert["accepted"] > 0.3 * cert["unlabeled"]
    assert all(score.confidence >= cert["threshold"] for _, score in accepted)
    assert not {image.id for image, _ in accepted} & labeled
    truth = audited["truth"]
    errors = sum(truth[image.id] != score.predicted_label for image, score in accepted)
    assert errors / len(accepted) <= cert["bound"]  # this draw's realized error is within it
    result = run_cli("auto-accept", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == cert
    text = run_cli("auto-accept").output
    assert f"threshold: confidence >= {cert['threshold']:.6f}" in text
    assert f"auto-accepted: {cert['accepted']} images" in text
    stricter = client.get("/api/auto-accept?risk=0.001", headers=audited["bearer"]).get_json()
    assert stricter["threshold"] is None and stricter["risk"] == 0.001
    for bad in ("0", "1", "nan", "x", "1e400"):
        response = client.get(f"/api/auto-accept?confidence={bad}", headers=audited["bearer"])
        assert response.status_code == 400
        assert response.get_json()["error"] == "confidence must be a number above 0 and below 1"
    return cert


def _manifest(out):
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def check_export(audited, cert, sessions, run_cli, out) -> None:
    result = run_cli("export", out, "--auto-accept")
    assert result.exit_code == 0, result.output
    rows = _manifest(out)
    with sessions() as s:
        version = s.scalar(select(ModelVersion))
        in_audit = set(audit.audit_set(s, version))
        sha = dict(s.execute(select(Image.sha256, Image.id)).tuples().all())
        confidence = dict(s.execute(select(Score.image_id, Score.confidence)).tuples().all())
    by_source = {source: [r for r in rows if r["source"] == source] for source in ("human",
                 "audit", "model")}  # fmt: skip
    assert len(by_source["audit"]) == cert["audit"] == len(in_audit)
    assert len(by_source["human"]) == AUDITED + QUEUED - cert["audit"]
    assert len(by_source["model"]) == cert["accepted"] and len(rows) == sum(
        map(len, by_source.values())
    )
    for row in rows:
        image_id = sha[row["sha256"]]
        folder = {"human": "images", "audit": "audit", "model": "auto"}[row["source"]]
        assert row["file"] == f"{folder}/{row['label']}/{row['sha256']}.png"
        assert (out / row["file"]).is_file()
        assert (image_id in in_audit) == (row["source"] == "audit")
        assert float(row["confidence"]) == pytest.approx(confidence[image_id])
        if row["source"] == "model":
            assert float(row["threshold"]) == pytest.approx(cert["threshold"])
            assert row["label"] == row["predicted_label"] and row["n_labels"] == "0"
        else:
            assert row["threshold"] == "" and row["label"] == audited["truth"][image_id]
    report = (out / "report.txt").read_text()
    for line in (
        "risk target (α): 0.05; confidence (1 − δ): 0.95",
        f"audit set: {cert['audit']} labels, {cert['audit_errors']} errors",
        f"pool: {N} scored images, {cert['unlabeled']} without a human answer",
        f"auto-accepted: {cert['accepted']} images",
        f"their error rate is at most {cert['bound']:.4f} (<= 0.05)",
        f"model labels: {cert['accepted']}",
    ):
        assert line in report
    # train --from-export reads images/ only, unless asked for audit/ and auto/.
    classes = [str(d) for d in range(10)]
    extra, info, _ = read_export(out, classes)
    assert len(extra) == len(by_source["human"])
    assert info["left_out"] == {"audit (held out)": cert["audit"],
                                "model (held out)": cert["accepted"]}  # fmt: skip
    everything, _, trained = read_export(out, classes, train_on_audit=True, include_auto=True)
    assert len(everything) == len(rows) == len(trained)


def test_export_auto_accept_without_a_certificate_writes_nothing(pool, run_cli, tmp_path):
    out = tmp_path / "out"
    result = run_cli("export", out, "--auto-accept")
    assert result.exit_code == 1
    assert "no certified auto-accept threshold, nothing exported: too few audit labels" in (
        result.output
    )
    assert not [p.name for p in tmp_path.iterdir() if "out" in p.name]  # nor a temporary one
    result = run_cli("export", out, "--risk", "0.01")
    assert (
        result.exit_code == 2 and "--risk and --confidence go with --auto-accept" in result.output
    )


def test_the_export_reads_one_state_while_people_label(
    audited, sessions, run_cli, tmp_path, monkeypatch
):
    """A label given while the export runs, on an item the model would label alone, waits for
    the next export: this one's model labels are the certificate's A(τ), as it stood."""
    from reviewer.export import dataset

    real, seen = dataset._certificate, {}

    def certificate_then_a_label(session, options):
        seen["cert"] = cert = real(session, options)
        with sessions() as s:
            version = s.scalar(select(ModelVersion))
            image, _ = audit.accepted_images(s, version, cert.threshold)[0]
            user_id = s.scalar(select(User.id).where(User.username == "lee"))
        with db.write_transaction(sessions) as s:
            locked = label_history.lock_image(s, image.id)
            label_history.give(s, locked, user_id, "0", model_version_id=None, seconds=2.0)
        seen["sha256"] = image.sha256
        return cert

    monkeypatch.setattr(dataset, "_certificate", certificate_then_a_label)
    out = tmp_path / "out"
    result = run_cli("export", out, "--auto-accept")
    assert result.exit_code == 0, result.output
    model = [row for row in _manifest(out) if row["source"] == "model"]
    assert len(model) == seen["cert"].accepted  # the certificate's count, not one fewer
    assert seen["sha256"] in {row["sha256"] for row in model}
    with sessions() as s:  # the label itself is kept for the next export
        assert s.scalar(select(Image.label_count).where(Image.sha256 == seen["sha256"])) == 1
