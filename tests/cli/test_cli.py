"""The command line as a user meets it: help texts, init-db, classes, stats, queue."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from reviewer.cli import cli
from tests.support.pool import add_scored_images, add_version


def all_commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(all_commands(cli)), ids=" ".join)
def test_every_command_explains_itself(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    summary = result.output.split("\n\n")[1].strip()
    assert len(summary) > 15, f"{' '.join(path)} needs a real help text"


def test_init_db_twice_and_classes(tmp_path):
    env = {"REVIEWER_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    runner = CliRunner()
    first = runner.invoke(cli, ["init-db", "--classes", "cat,dog"], env=env)
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["init-db"], env=env)
    assert again.exit_code == 0, again.output
    shown = runner.invoke(cli, ["classes", "show"], env=env)
    assert shown.output.split() == ["cat", "dog"]
    bad = runner.invoke(cli, ["classes", "set", "a,a"], env=env)
    assert bad.exit_code != 0 and "duplicate class names: a" in bad.output
    assert runner.invoke(cli, ["classes", "show"], env=env).output.split() == ["cat", "dog"]


def test_commands_refuse_an_uninitialised_database(tmp_path):
    env = {"REVIEWER_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    result = CliRunner().invoke(cli, ["stats"], env=env)
    assert result.exit_code != 0
    assert "is not initialised: run `reviewer init-db`" in result.output


def test_bad_environment_value_is_named(tmp_path):
    env = {"REVIEWER_MC_SAMPLES": "many"}
    result = CliRunner().invoke(cli, ["stats"], env=env)
    assert result.exit_code != 0 and "REVIEWER_MC_SAMPLES='many' is not an integer" in result.output


def test_stats_counts_by_label(run_cli, tmp_path):
    from tests.support.images import write_png

    write_png(tmp_path / "p" / "3" / "a.png", 1)
    write_png(tmp_path / "p" / "3" / "b.png", 2)
    write_png(tmp_path / "p" / "x.png", 3)
    ingested = run_cli("ingest", tmp_path / "p", "--labels-from-folders").output
    assert "rejected: 1" in ingested and "folder label" in ingested  # 'p' is not a class
    out = run_cli("stats").output
    assert "images: 2" in out
    assert "3: 2" in out and "ok: 2" in out


def test_queue_json_lines(run_cli, sessions):
    with sessions() as s, s.begin():
        version = add_version(s)
        add_scored_images(s, version, 5, given_labels=["1", "2", None, "4", "5"])
    result = run_cli("queue", "--strategy", "mislabeled", "--json", "--limit", "10")
    items = [json.loads(line) for line in result.output.splitlines()]
    assert len(items) == 4
    values = [i["self_confidence"] for i in items]
    assert values == sorted(values) and items[0]["rank_value"] == values[0]
    assert {"id", "sha256", "path", "given_label", "predicted_label", "mutual_info"} <= set(
        items[0]
    )
    text = run_cli("queue", "--strategy", "bald").output
    assert "BALD" in text


def test_queue_without_a_model_says_what_to_do(run_cli):
    result = run_cli("queue")
    assert result.exit_code != 0 and "no active model version" in result.output
