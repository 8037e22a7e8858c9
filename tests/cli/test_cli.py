"""The command line as a user meets it: help texts, init-db, classes, stats, queue."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from reviewer.cli import cli
from reviewer.core import db
from reviewer.review import answers
from tests.support.pool import add_scored_images, add_user, add_version


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
    assert "reviewed: 0 with a human label (labels per item: 1)" in out


def test_stats_counts_reviewed_items(run_cli, sessions):
    with sessions() as s, s.begin():
        version = add_version(s)
        images = add_scored_images(s, version, 4)
        user = add_user(s, "lee")
    with db.write_transaction(sessions) as s:
        for image in images[:3]:
            answers.submit_label(s, image.id, user.id, "1")
    out = run_cli("stats").output
    assert "reviewed: 3 with a human label" in out
    assert "scored by the active version: 4" in out


def test_queue_json_is_one_document_shaped_like_the_api(run_cli, sessions):
    with sessions() as s, s.begin():
        version = add_version(s)
        add_scored_images(s, version, 5, given_labels=["1", "2", None, "4", "5"])
    document = json.loads(run_cli("queue", "--strategy", "mislabeled", "--json").output)
    assert set(document) == {"strategy", "items", "next_cursor"}
    assert document["strategy"] == "mislabeled" and len(document["items"]) == 4
    lines = run_cli("queue", "--strategy", "mislabeled", "--jsonl").output.splitlines()
    assert [json.loads(line) for line in lines] == document["items"]
    both = run_cli("queue", "--json", "--jsonl")
    assert both.exit_code == 2 and "pick one" in both.output


def test_queue_json_lines(run_cli, sessions):
    with sessions() as s, s.begin():
        version = add_version(s)
        add_scored_images(s, version, 5, given_labels=["1", "2", None, "4", "5"])
    result = run_cli("queue", "--strategy", "mislabeled", "--jsonl", "--limit", "10")
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


def test_tensorflow_logs_are_hidden_unless_asked_for(run_cli, monkeypatch):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import os, reviewer.ml.mc; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert loaded.stdout.strip() == "3", loaded.stderr  # C++ INFO, WARNING and ERROR hidden
    assert "cuInit" not in loaded.stderr and "cuda drivers" not in loaded.stderr
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    run_cli("--tf-logs", "stats")
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # set before TensorFlow would load


def test_serve_on_a_busy_port_says_so_before_claiming_to_serve(run_cli):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", port)
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port N" in result.output
    assert "serving on" not in result.output  # bound first, printed only once it is ours
