"""Ingest from an s3:// prefix into an image store on S3 (a real S3-protocol server on
loopback), on SQLite and PostgreSQL: the same layout, hostile names, limits and labels as a
local folder, and a failure mid-ingest that leaves no object without its row."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from reviewer.core import locations
from reviewer.core.objects import ObjectStore
from reviewer.core.schema import Image
from reviewer.ingest import run as ingest_run
from reviewer.ingest import run_ingest
from tests.support.images import png_bytes
from tests.support.s3 import keys, s3_client


def put(endpoint, bucket, key, data: bytes) -> None:
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=data)


def stored_keys(endpoint, bucket) -> list[str]:
    return keys(endpoint, bucket, "images/")


def test_a_prefix_ingests_like_a_folder(s3_cli, s3_config, s3_endpoint, bucket, sessions):
    for i in range(4):
        put(s3_endpoint, bucket, f"incoming/{i % 2}/digit{i}.png", png_bytes(i))
    put(s3_endpoint, bucket, "incoming/notes.txt", b"not an image")
    put(s3_endpoint, bucket, "incoming/0/.hidden.png", png_bytes(9))
    put(s3_endpoint, bucket, "incoming/broken.png", png_bytes(5)[:60])
    put(s3_endpoint, bucket, "incoming/big.png", png_bytes(6, size=200))
    put(s3_endpoint, bucket, "incoming/a/../escape.png", png_bytes(7))
    put(
        s3_endpoint,
        bucket,
        "incoming/labels.csv",
        b"filename,label\n0/digit0.png,3\n1/digit1.png,cat\nmissing.png,4\n../x.png,1\n",
    )

    result = s3_cli(
        "ingest", f"s3://{bucket}/incoming/", "--labels", f"s3://{bucket}/incoming/labels.csv",
        env={"REVIEWER_MAX_FILE_BYTES": "5000"},
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert "added: 3" in result.output  # digit0, digit2, digit3 (digit1's label is refused)
    assert "skipped (no image extension): 3" in result.output  # notes, .hidden, labels.csv
    assert "1/digit1.png: labels.csv line 3: label 'cat'" in result.output
    assert "broken.png: truncated or corrupt" in result.output
    assert "big.png: file too large" in result.output
    assert "a/../escape.png: object name has an empty part or '..'" in result.output
    assert "labels.csv line 4 (missing.png): no such file" in result.output
    assert "labels.csv line 5 (../x.png): file name must stay inside" in result.output
    with sessions() as session:
        rows = {r.original_filename: r for r in session.scalars(select(Image))}
    assert set(rows) == {"0/digit0.png", "0/digit2.png", "1/digit3.png"}
    assert rows["0/digit0.png"].given_label == "3" and rows["0/digit2.png"].given_label is None
    digest = hashlib.sha256(png_bytes(0)).hexdigest()
    assert rows["0/digit0.png"].path == f"{digest[:2]}/{digest}.png"
    assert stored_keys(s3_endpoint, bucket) == sorted(f"images/{r.path}" for r in rows.values())
    store = ObjectStore(s3_config.data_dir)
    assert store.read_bytes(rows["0/digit0.png"].path) == png_bytes(0)

    again = s3_cli("ingest", f"s3://{bucket}/incoming/0", "--labels-from-folders")
    assert "added: 0" in again.output and "already present: 2" in again.output


def test_a_missing_prefix_or_bucket_changes_nothing(s3_cli, s3_endpoint, bucket, sessions):
    result = s3_cli("ingest", f"s3://{bucket}/nothing-here/")
    assert result.exit_code == 1 and "no objects under this prefix" in result.output
    result = s3_cli("ingest", "s3://no-such-bucket-here/x/")
    assert result.exit_code == 1 and "no-such-bucket-here" in result.output
    result = s3_cli("ingest", "ftp://host/x/")
    assert result.exit_code == 2 and "unsupported scheme ftp://" in result.output
    with sessions() as session:
        assert session.scalars(select(Image)).all() == []
    assert stored_keys(s3_endpoint, bucket) == []


def test_a_failure_mid_ingest_removes_the_batch_objects(
    s3_config, s3_endpoint, bucket, sessions, monkeypatch
):
    for i in range(6):
        put(s3_endpoint, bucket, f"incoming/{i}.png", png_bytes(100 + i))
    real_add, calls = ingest_run.add_batch, []

    def add_then_fail_second(session, store, batch, **options):
        calls.append(len(batch))
        real_add(session, store, batch, **options)  # objects uploaded, rows staged
        if len(calls) == 2:
            raise ConnectionError("the database went away before the commit")

    monkeypatch.setattr(ingest_run, "add_batch", add_then_fail_second)
    store = ObjectStore(s3_config.data_dir)
    with pytest.raises(ConnectionError):
        run_ingest(sessions, store, [f"s3://{bucket}/incoming"], max_pixels=10**7, batch_size=2)
    with sessions() as session:
        paths = sorted(session.scalars(select(Image.path)))
    assert len(paths) == 2  # the first batch was committed, the second rolled back
    assert stored_keys(s3_endpoint, bucket) == [f"images/{p}" for p in paths]

    monkeypatch.setattr(ingest_run, "add_batch", real_add)
    report = run_ingest(sessions, store, [f"s3://{bucket}/incoming"], max_pixels=10**7)
    assert (report.added, report.already_present) == (4, 2)
    with sessions() as session:
        paths = sorted(session.scalars(select(Image.path)))
    assert stored_keys(s3_endpoint, bucket) == [f"images/{p}" for p in paths] and len(paths) == 6


def test_store_locations_are_checked_when_the_settings_are_read(s3_cli):
    result = s3_cli("stats", env={"REVIEWER_DATA_DIR": "ftp://host/images"})
    assert result.exit_code != 0
    assert "REVIEWER_DATA_DIR='ftp://host/images': unsupported scheme ftp://" in result.output
    result = s3_cli("stats", env={"REVIEWER_MODEL_DIR": "s3:///models"})
    assert "REVIEWER_MODEL_DIR='s3:///models': no bucket after s3://" in result.output
    result = s3_cli("train", "--data", "s3://b/train", "--name", "x")
    assert result.exit_code == 2 and "training reads a local folder" in result.output
    assert locations.parse("s3://b/p/") == "s3://b/p"
    assert locations.parse("relative/s3-folder") == Path("relative/s3-folder")
