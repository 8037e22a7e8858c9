"""The command line on hostile or broken input: one line naming the input and the problem,
exit status 1 (2 for usage errors), never a traceback; no escape sequence reaches a terminal."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import update

from reviewer.cli import cli
from reviewer.core.schema import Image
from tests.support.pool import add_scored_images, add_version


def _run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env or {})


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.count("\n") == 1, result.output
    assert all(fragment in result.output for fragment in fragments), result.output


def test_an_unreachable_database_is_one_line():
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    _one_line_error(_run("init-db", env={"REVIEWER_DATABASE_URL": url}), "127.0.0.1:1", "refused")
    bad = _run("init-db", env={"REVIEWER_DATABASE_URL": "nonsense://x"})
    _one_line_error(bad, "nonsense://x")


def test_exports_to_impossible_places_are_one_line(run_cli, tmp_path):
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    _one_line_error(run_cli("export", tmp_path / "dangling"), "symbolic link")
    (tmp_path / "file").write_text("a file")
    _one_line_error(run_cli("export", tmp_path / "file" / "sub"), "is not a directory")


def test_usage_errors_exit_2(run_cli):
    assert run_cli("queue", "--strategy", "nope").exit_code == 2
    assert run_cli("nonsense-command").exit_code == 2


def test_queue_output_carries_no_terminal_escapes(run_cli, sessions):
    with sessions() as s, s.begin():
        (image,) = add_scored_images(s, add_version(s), 1, given_labels=["3"])
        s.execute(
            update(Image)
            .where(Image.id == image.id)
            .values(original_filename="\x1b]0;owned\x07\x1b[2J\u202ename.png")
        )
    out = run_cli("queue", "--strategy", "entropy").output
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;owned\\x07" in out
    assert "\\u001b" in run_cli("queue", "--json").output  # JSON escapes them itself
