"""`reviewer ingest` end to end through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
import zlib

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from reviewer.core.schema import Image
from tests.support.images import png_bytes, write_png, write_pngs


def count_images(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Image))


def rows(sessions) -> list[Image]:
    with sessions() as session:
        return list(session.scalars(select(Image).order_by(Image.id)))


def store_files(config) -> set[str]:
    root = config.data_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_ingest_folder_records_images_and_dimensions(run_cli, sessions, config, tmp_path):
    write_pngs(tmp_path / "in", 3)
    write_png(tmp_path / "in" / "sub" / "rgb.png", 99, size=32, mode="RGB")
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    result = run_cli("ingest", tmp_path / "in", "--source", "batch-1")
    assert result.exit_code == 0, result.output
    assert "added: 4" in result.output
    assert "skipped (no image extension): 1" in result.output
    images = rows(sessions)
    assert len(images) == 4
    rgb = next(i for i in images if i.original_filename.endswith("rgb.png"))
    assert (rgb.width, rgb.height, rgb.mode) == (32, 32, "RGB")
    assert {i.source for i in images} == {"batch-1"}
    assert {i.status for i in images} == {"ok"}
    # Content-addressed: the stored file's name is its hash and its bytes are the original's.
    stored = config.data_dir / rgb.path
    assert rgb.sha256 in stored.name
    assert stored.read_bytes() == (tmp_path / "in" / "sub" / "rgb.png").read_bytes()
    assert store_files(config) == {i.path for i in images}


def test_same_bytes_twice_add_nothing(run_cli, sessions, tmp_path):
    write_pngs(tmp_path / "a", 2)
    write_png(tmp_path / "b" / "copy.png", 0)  # same bytes as a/img_00000.png
    first = run_cli("ingest", tmp_path / "a")
    second = run_cli("ingest", tmp_path / "a", tmp_path / "b")
    assert "added: 2" in first.output
    assert "added: 0" in second.output and "already present: 3" in second.output
    assert count_images(sessions) == 2


def test_labels_from_folders_and_csv_wins(run_cli, sessions, tmp_path):
    root = tmp_path / "data"
    write_png(root / "3" / "a.png", 1)
    write_png(root / "7" / "b.png", 2)
    (root / "labels.csv").write_text("filename,label\n7/b.png,1\n")
    result = run_cli("ingest", root, "--labels-from-folders", "--labels", root / "labels.csv")
    assert result.exit_code == 0, result.output
    labels = {i.original_filename.rsplit("/", 1)[-1]: i.given_label for i in rows(sessions)}
    assert labels == {"a.png": "3", "b.png": "1"}


def test_update_labels_replaces_given_labels(run_cli, sessions, tmp_path):
    write_png(tmp_path / "p" / "a.png", 1)
    (tmp_path / "p" / "labels.csv").write_text("filename,label\na.png,2\n")
    run_cli("ingest", tmp_path / "p", "--labels", tmp_path / "p" / "labels.csv")
    (tmp_path / "p" / "labels.csv").write_text("filename,label\na.png,5\n")
    unchanged = run_cli("ingest", tmp_path / "p", "--labels", tmp_path / "p" / "labels.csv")
    assert "labels updated: 0" in unchanged.output
    assert rows(sessions)[0].given_label == "2"
    updated = run_cli(
        "ingest", tmp_path / "p", "--labels", tmp_path / "p" / "labels.csv", "--update-labels"
    )
    assert "labels updated: 1" in updated.output
    assert rows(sessions)[0].given_label == "5"


def bomb_png() -> bytes:
    """A valid 1x1 PNG whose header claims 20,000 x 20,000 pixels."""
    data = bytearray(png_bytes(0, size=1))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = (20_000).to_bytes(4, "big") + (20_000).to_bytes(4, "big")
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = crc.to_bytes(4, "big")
    return bytes(data)


def encoded(mode: str, fmt: str, size=(8, 8), **save) -> bytes:
    img = PILImage.new(mode, size)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def test_bad_files_are_rejected_with_reasons_and_the_rest_goes_on(
    run_cli, sessions, config, tmp_path
):
    d = tmp_path / "in"
    write_pngs(d, 2)
    good_jpeg = encoded("RGB", "JPEG")
    (d / "truncated.png").write_bytes(png_bytes(5)[:60])
    (d / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 2])
    (d / "text.png").write_text("hello, I am not a picture")
    (d / "empty.png").write_bytes(b"")
    (d / "bomb.png").write_bytes(bomb_png())
    result = run_cli("ingest", d)
    assert result.exit_code == 1, result.output  # rejects: exit 1 (the good files are in)
    assert "added: 2" in result.output
    assert "rejected: 5 (" in result.output
    assert (
        "5 file(s) rejected" in result.output and "2 accepted image(s) were added" in result.output
    )
    for name in ("truncated.png", "truncated.jpg", "text.png", "empty.png", "bomb.png"):
        # Named relative to the ingested folder (never the absolute path typed).
        line = next(line for line in result.output.splitlines() if line.strip().startswith(name))
        assert ": " in line and len(line.split(": ", 1)[1]) > 5, line
    assert "too large" in result.output or "pixels" in result.output
    assert count_images(sessions) == 2
    assert len(store_files(config)) == 2  # nothing partial is left


@pytest.mark.parametrize(
    ("mode", "fmt"), [("I;16", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG")]
)
def test_unusual_modes_are_accepted(run_cli, sessions, tmp_path, mode, fmt):
    (tmp_path / f"x.{fmt.lower()}").write_bytes(encoded(mode, fmt))
    result = run_cli("ingest", tmp_path / f"x.{fmt.lower()}")
    assert "added: 1" in result.output, result.output
    assert rows(sessions)[0].mode == mode


def test_csv_rows_outside_the_folder_or_missing_are_rejected(run_cli, sessions, tmp_path):
    d = tmp_path / "p"
    write_png(d / "a.png", 1)
    write_png(tmp_path / "outside.png", 2)
    (d / "labels.csv").write_text("filename,label\n../outside.png,1\nghost.png,2\na.png,3\n")
    result = run_cli("ingest", d, "--labels", d / "labels.csv", "--allow-rejects")
    assert result.exit_code == 0, result.output  # --allow-rejects: rejects are listed, exit 0
    assert "must stay inside" in result.output
    assert "no such file" in result.output
    assert [i.given_label for i in rows(sessions)] == ["3"]


def test_label_outside_the_class_list_is_rejected(run_cli, sessions, tmp_path):
    d = tmp_path / "p"
    write_png(d / "a.png", 1)
    write_png(d / "b.png", 2)
    (d / "labels.csv").write_text("filename,label\na.png,cat\nb.png,4\n")
    result = run_cli("ingest", d, "--labels", d / "labels.csv")
    assert "'cat' is not in the class list" in result.output and "rejected: 1" in result.output
    assert result.exit_code == 1
    # The file with the bad label is left out, so a corrected CSV ingests it with its label.
    assert [i.given_label for i in rows(sessions)] == ["4"]
    (d / "labels.csv").write_text("filename,label\na.png,3\nb.png,4\n")
    again = run_cli("ingest", d, "--labels", d / "labels.csv")
    assert "added: 1" in again.output
    assert sorted(i.given_label for i in rows(sessions)) == ["3", "4"]


@pytest.mark.parametrize("header", ["filename\n", "filename,label,extra\n", "file,label\n"])
def test_labels_csv_with_wrong_columns_changes_nothing(run_cli, sessions, config, tmp_path, header):
    d = tmp_path / "p"
    write_png(d / "a.png", 1)
    (d / "labels.csv").write_text(header + "a.png,1\n")
    result = run_cli("ingest", d, "--labels", d / "labels.csv")
    assert result.exit_code != 0
    assert (
        "labels.csv" in result.output and "header must be exactly 'filename,label'" in result.output
    )
    assert count_images(sessions) == 0
    assert not store_files(config)


def test_missing_path_changes_nothing(run_cli, sessions, tmp_path):
    write_png(tmp_path / "real.png", 1)
    result = run_cli("ingest", tmp_path / "real.png", tmp_path / "nope")
    assert result.exit_code != 0
    assert "path does not exist" in result.output and "nope" in result.output
    assert count_images(sessions) == 0


def test_file_names_that_are_not_utf8(run_cli, sessions, tmp_path):
    folder = os.fsencode(tmp_path / "p")
    os.makedirs(folder)
    with open(os.path.join(folder, b"caf\xe9.png"), "wb") as handle:
        handle.write(png_bytes(3))
    result = run_cli("ingest", tmp_path / "p")
    assert "added: 1" in result.output, result.output
    assert rows(sessions)[0].original_filename.endswith("caf\\xe9.png")


def test_a_label_in_the_wrong_case_gets_a_did_you_mean(run_cli, sessions, tmp_path):
    run_cli("classes", "set", "cat,dog")
    d = tmp_path / "p"
    write_png(d / "a.png", 1)
    (d / "labels.csv").write_text("filename,label\na.png,Cat\n")
    result = run_cli("ingest", d, "--labels", d / "labels.csv")
    assert "'Cat' is not in the class list (cat, dog): did you mean 'cat'?" in result.output
    assert result.exit_code == 1
