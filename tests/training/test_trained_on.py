"""The statement ``register --trained-on FILE`` reads: sha256 lines or a CSV's sha256 column."""

from __future__ import annotations

import pytest

from reviewer.training.errors import TrainingError
from reviewer.training.trained_on import read_statement

A, B = "a" * 64, "0123456789abcdef" * 4


def test_one_sha256_per_line_with_comments_and_blanks(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text(f"# from the vendor\n{B}\n\n  {A.upper()}  \n{B}\n")
    assert read_statement(path) == sorted({A, B})


def test_a_csv_with_a_sha256_column_such_as_a_manifest(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text(f"file,sha256,label\nimages/3/{A}.png,{A},3\nimages/5/{B}.png,{B},5\n")
    assert read_statement(path) == [B, A]


def test_an_empty_statement_says_none_of_the_pool(tmp_path):
    path = tmp_path / "none.txt"
    path.write_text("")
    assert read_statement(path) == []


@pytest.mark.parametrize(
    "text, where",
    [
        (f"{A}\n{A[:-1]}\n", "line 2: "),
        (f"file,sha256\nx.png,{A}\ny.png,zz\n", "line 3: 'zz'"),
        ("\x00\x01\n", "line 1: "),
    ],
)
def test_a_value_that_is_not_a_sha256_is_named_by_line(tmp_path, text, where):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(TrainingError, match=f"--trained-on .*bad.txt: {where}"):
        read_statement(path)


def test_an_unreadable_statement(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TrainingError, match="cannot read it"):
        read_statement(path)
