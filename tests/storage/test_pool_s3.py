"""The pool on S3 (a real S3-protocol server on loopback), on SQLite and PostgreSQL: the worker
scores images it fetches from the store, the web app streams them at /images/<sha256> with
the local store's headers, and an export to s3:// is complete once manifest.csv is there."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from reviewer import create_app
from reviewer.core.objects import ObjectStore
from reviewer.core.schema import Image, Score
from reviewer.export import remote as remote_export
from reviewer.ingest import run_ingest
from reviewer.scoring.worker import Worker
from tests.support.exports import give
from tests.support.images import png_bytes, write_pngs
from tests.support.s3 import keys, s3_client
from tests.support.scoring import FakeSampler, make_version
from tests.support.web import add_scored_items, login


def test_the_worker_scores_images_fetched_from_the_store(
    s3_config, sessions, tmp_path, bucket, s3_endpoint
):
    store = ObjectStore(s3_config.data_dir)
    run_ingest(sessions, store, write_pngs(tmp_path / "in", 9), max_pixels=10**7)
    version = make_version(sessions, s3_config, samples=4)
    assert version.path == f"{s3_config.model_dir}/m/1"
    with sessions() as session:
        gone = session.scalars(select(Image).order_by(Image.id)).first()
    s3_client(s3_endpoint).delete_object(Bucket=bucket, Key=f"images/{gone.path}")

    worker = Worker(sessions, store, lease_seconds=60, batch_size=4, sampler=FakeSampler())
    assert worker.run(once=True, progress=False) == 8
    with sessions() as session:
        scores = session.scalars(select(Score)).all()
        failed = session.get(Image, gone.id)
    assert len(scores) == 8 and {s.samples for s in scores} == {4}
    assert failed.status == "failed" and "file not found" in failed.failure_reason


def test_images_stream_from_the_store_with_the_local_headers(s3_config, sessions, accounts):
    with sessions() as session, session.begin():
        add_scored_items(session, ObjectStore(s3_config.data_dir), 3)
    app = create_app(s3_config)
    client = app.test_client()
    login(client, "lee")
    with sessions() as session:
        image = session.scalars(select(Image).order_by(Image.id)).first()
    response = client.get(f"/images/{image.sha256}")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert response.data == png_bytes(0)
    assert response.headers["ETag"] == f'"{image.sha256}"'
    again = client.get(f"/images/{image.sha256}", headers={"If-None-Match": f'"{image.sha256}"'})
    assert again.status_code == 304 and again.data == b""
    assert client.get(f"/images/{'0' * 64}").status_code == 404
    assert app.test_client().get(f"/images/{image.sha256}").status_code == 302  # to the login
    app.extensions["reviewer"]["engine"].dispose()


def test_an_export_to_s3_uploads_the_manifest_last(
    s3_config, s3_cli, sessions, accounts, bucket, s3_endpoint, monkeypatch
):
    with sessions() as session, session.begin():
        ids = add_scored_items(session, ObjectStore(s3_config.data_dir), 4)
    for image_id, label in zip(ids, ["3", "3", "5", "none_of_these"], strict=True):
        give(sessions, image_id, accounts["lee"], label)
    order, fs = [], ObjectStore(s3_config.data_dir).fs  # the process's one s3 file system
    real_put_file, real_async_put_file = fs.put_file, type(fs)._put_file

    def recorded(local, remote, *args, **kwargs):
        real_put_file(local, remote, *args, **kwargs)
        order.append(remote.rsplit("/", 1)[-1])

    async def recorded_in_bulk(self, local, remote, *args, **kwargs):  # what fs.put runs
        await real_async_put_file(self, local, remote, *args, **kwargs)
        order.append(remote.rsplit("/", 1)[-1])

    monkeypatch.setattr(fs, "put_file", recorded)
    monkeypatch.setattr(type(fs), "_put_file", recorded_in_bulk)
    out = f"s3://{bucket}/exports/run1"
    result = s3_cli("export", out)
    assert result.exit_code == 0, result.output
    assert f"exported 4 items to {out}" in result.output
    assert order[-3:] == remote_export.LAST  # report, manifest.jsonl, manifest.csv last
    assert len(order) == 7 and all(name.endswith(".png") for name in order[:-3])
    exported = keys(s3_endpoint, bucket, "exports/run1/")
    with sessions() as session:
        shas = {i: session.get(Image, i).sha256 for i in ids}
    assert f"exports/run1/images/3/{shas[ids[0]]}.png" in exported
    assert f"exports/run1/none_of_these/{shas[ids[3]]}.png" in exported
    body = s3_client(s3_endpoint).get_object(Bucket=bucket, Key="exports/run1/manifest.csv")
    rows = list(csv.DictReader(io.StringIO(body["Body"].read().decode())))
    assert sorted(r["sha256"] for r in rows) == sorted(shas.values())

    refused = s3_cli("export", out)
    assert (
        refused.exit_code == 1
        and "is not empty: choose another prefix or pass --force" in refused.output
    )
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key="other/x.txt", Body=b"mine")
    refused = s3_cli("export", f"s3://{bucket}/other", "--force")
    assert "does not look like an export (no manifest.jsonl)" in refused.output
    give(sessions, ids[2], accounts["lee"], "3")
    replaced = s3_cli("export", out, "--force")
    assert replaced.exit_code == 0, replaced.output
    exported = keys(s3_endpoint, bucket, "exports/run1/")
    assert f"exports/run1/images/3/{shas[ids[2]]}.png" in exported
    assert f"exports/run1/images/5/{shas[ids[2]]}.png" not in exported  # the old one is gone
