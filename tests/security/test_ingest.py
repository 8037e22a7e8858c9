"""Hostile files for ingest and the worker: symlinks out of the folder, devices and pipes,
sparse giants, names with terminal escapes, images that decode to gigabytes, and an image
that kills the worker. Each is refused with its reason; nothing else is affected."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select, update

from reviewer.core.files import FileStore
from reviewer.core.schema import Image, Score, ScoreLease, utcnow
from reviewer.ingest import run_ingest
from reviewer.scoring.claims import MAX_ATTEMPTS
from tests.security.test_upload import sixteen_bit_png
from tests.support.env import config_env
from tests.support.images import write_png, write_pngs
from tests.support.scoring import REPO_ROOT, claim, ingest_pngs, make_version, make_worker


def _rows(sessions) -> list[Image]:
    with sessions() as s:
        return list(s.scalars(select(Image).order_by(Image.id)))


def _rejected(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(name))


def test_symlinks_out_of_the_folder_are_refused_unless_followed(run_cli, sessions, tmp_path):
    outside = write_png(tmp_path / "outside" / "secret.png", 3)
    folder = tmp_path / "in"
    write_pngs(folder, 1)
    (folder / "leak.png").symlink_to(outside)
    (folder / "passwd.png").symlink_to("/etc/passwd")
    result = run_cli("ingest", folder)
    assert result.exit_code == 1, result.output  # the good file goes in; rejects: exit 1
    assert "leads outside the ingested folder" in _rejected(result.output, "leak.png")
    assert "leads outside" in _rejected(result.output, "passwd.png")
    assert len(_rows(sessions)) == 1
    followed = run_cli("ingest", folder, "--follow-symlinks")
    assert "added: 1" in followed.output  # the image behind the link; passwd is no image
    assert "not an image" in _rejected(followed.output, "passwd.png")


def test_a_csv_follows_the_same_symlink_rule(run_cli, sessions, tmp_path):
    outside = write_png(tmp_path / "outside" / "x.png", 4)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.png").symlink_to(outside)
    (folder / "labels.csv").write_text("filename,label\nx.png,3\n")
    result = run_cli("ingest", folder, "--labels", folder / "labels.csv")
    assert "must stay inside the CSV's folder" in result.output
    assert _rows(sessions) == []


def test_pipes_devices_and_giants_are_refused_before_reading(run_cli, sessions, tmp_path):
    folder = tmp_path / "in"
    write_pngs(folder, 1)
    os.mkfifo(folder / "pipe.png")  # reading it would block ingest for ever
    with open(folder / "sparse.png", "wb") as handle:  # 600 MB that take no disk
        handle.truncate(600 * 2**20)
    started = time.monotonic()
    result = run_cli("ingest", folder)
    assert time.monotonic() - started < 30
    assert "not a regular file" in _rejected(result.output, "pipe.png")
    assert "REVIEWER_MAX_FILE_BYTES" in _rejected(result.output, "sparse.png")
    assert len(_rows(sessions)) == 1


def test_names_keep_no_terminal_escapes_and_no_absolute_path(run_cli, sessions, tmp_path):
    folder = tmp_path / "in"
    evil = "\x1b]0;owned\x07\x1b[2Jcat.png"
    write_png(folder / "sub" / evil, 5)
    assert run_cli("ingest", folder).exit_code == 0
    (image,) = _rows(sessions)
    assert "\x1b" not in image.original_filename and "\x07" not in image.original_filename
    assert image.original_filename == "sub/\\x1b]0;owned\\x07\\x1b[2Jcat.png"
    assert not image.original_filename.startswith(str(tmp_path))


def test_an_image_that_decodes_to_gigabytes_is_refused_at_ingest(run_cli, sessions, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "deep.png").write_bytes(sixteen_bit_png(9_400))
    result = run_cli("ingest", folder, env={"REVIEWER_MAX_DECODED_BYTES": str(64 * 2**20)})
    assert "REVIEWER_MAX_DECODED_BYTES" in _rejected(result.output, "deep.png")


WORKER_UNDER_A_MEMORY_CAP = """
import resource, sys
sys.path.insert(0, {root!r})
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from reviewer.core.config import Config
from reviewer.scoring.process import run_worker
from tests.support.scoring import FakeSampler
sys.exit(run_worker(Config.from_env(), once=True, batch_size=4, sampler=FakeSampler(),
                    progress=False))
"""


@pytest.mark.slow
def test_the_worker_survives_a_huge_image_under_a_memory_cap(sessions, config, tmp_path):
    """A 9400 x 9400 16-bit image next to ordinary ones, scored by a worker limited to 1.5 GB
    of address space: it is scored or failed with a reason, never the worker's end."""
    ingest_pngs(sessions, config, tmp_path, 3)
    deep = tmp_path / "deep" / "deep.png"
    deep.parent.mkdir()
    deep.write_bytes(sixteen_bit_png(9_400))
    big = 512 * 2**20
    run_ingest(
        sessions, FileStore(config.data_dir), [deep], max_pixels=10**9, max_decoded_bytes=big
    )
    make_version(sessions, config)
    code = WORKER_UNDER_A_MEMORY_CAP.format(root=str(REPO_ROOT), cap=1536 * 2**20)
    env = {**os.environ, **config_env(config), "REVIEWER_MAX_DECODED_BYTES": str(big)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    rows = _rows(sessions)
    assert len(rows) == 4
    with sessions() as s:
        scored = set(s.scalars(select(Score.image_id)))
    assert all(r.id in scored or (r.status == "failed" and r.failure_reason) for r in rows)
    assert len(scored) >= 3


def test_a_huge_image_fails_in_the_worker_not_the_batch(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 3)
    deep = tmp_path / "deep" / "deep.png"
    deep.parent.mkdir()
    PILImage.fromarray(np.zeros((3000, 3000), dtype=np.uint16)).save(deep)  # 18 MB decoded
    run_ingest(sessions, FileStore(config.data_dir), [deep], max_pixels=10**9)
    make_version(sessions, config)
    worker = make_worker(sessions, config, max_decoded_bytes=2**20)  # the worker's own budget
    assert worker.run(once=True, progress=False) == 3
    failed = [r for r in _rows(sessions) if r.status == "failed"]
    assert len(failed) == 1 and "REVIEWER_MAX_DECODED_BYTES" in failed[0].failure_reason


def test_an_image_whose_worker_dies_is_failed_after_three_attempts(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 2)
    version = make_version(sessions, config)
    t = utcnow()
    first = claim(sessions, version, "w1", 10, now=t, lease=1)  # w1 dies holding both
    for attempt in range(2, MAX_ATTEMPTS + 1):  # each retry dies too (one image kills it)
        t += timedelta(seconds=2)
        retried = [claim(sessions, version, f"w{attempt}", 10, now=t, lease=1) for _ in first]
        assert [len(batch) for batch in retried] == [1, 1]  # claimed alone, one at a time
    with sessions() as s, s.begin():  # the second image was fine after all: it got scored
        s.execute(update(ScoreLease).where(ScoreLease.image_id == first[1].id).values(attempts=1))
    t += timedelta(seconds=2)
    last = claim(sessions, version, "w9", 10, now=t, lease=60)
    assert [c.id for c in last] == [first[1].id]  # the first image was failed on the way
    (killer,) = [r for r in _rows(sessions) if r.id == first[0].id]
    assert killer.status == "failed"
    assert (
        killer.failure_reason
        == f"the worker died while scoring this image, {MAX_ATTEMPTS} attempts"
    )
