"""The model store and activation rules, on SQLite and PostgreSQL (no TensorFlow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from reviewer.core import versions
from reviewer.core.schema import ModelVersion, Score
from reviewer.ml import ood
from reviewer.training import fingerprints, registry
from tests.support.scoring import DIGITS, count, ingest_pngs, make_version, make_worker


def states(sessions) -> dict[str, str]:
    with sessions() as session:
        rows = session.scalars(select(ModelVersion)).all()
        return {versions.version_name(v): versions.state(v) for v in rows}


def activate(sessions, ref) -> str:
    with sessions() as session, session.begin():
        return registry.request_activation(session, registry.resolve(session, ref))


def test_write_version_numbers_folders_and_leaves_no_temporary(sessions, config):
    first = make_version(sessions, config, activate=False)
    second = make_version(sessions, config, activate=False)
    assert (first.version, second.version) == (1, 2)
    assert registry.next_version(config.model_dir, "m") == 3
    folder = config.model_dir / "m"
    assert sorted(p.name for p in folder.iterdir()) == ["1", "2"]
    card = json.loads((folder / "2" / registry.CARD_FILE).read_text())
    assert card["version"] == 2 and card["classes"] == DIGITS
    assert (folder / "2" / registry.MODEL_FILE).is_file()


def test_a_crash_while_saving_leaves_no_version(config):
    def explode(path):
        path.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        registry.write_version(config.model_dir, {"name": "m"}, explode)
    assert list((config.model_dir / "m").iterdir()) == []
    assert registry.next_version(config.model_dir, "m") == 1


def test_the_ood_fit_is_written_beside_the_model_and_read_back(config, caplog):
    rng = np.random.default_rng(0)
    params, index = ood.fit_ood(
        rng.normal(size=(30, 4)), reference_features=rng.normal(size=(10, 4)),
        reference_entropy=rng.uniform(size=10),
    )  # fmt: skip
    card, folder = registry.write_version(
        config.model_dir, {"name": "m"}, lambda p: p.write_bytes(b"model"),
        ood_fit=ood.Fit(params, index),
    )  # fmt: skip
    assert card["ood"] == params
    read = registry.read_ood_fit(folder, registry.read_card(folder))
    assert read.params == params and np.array_equal(read.index, index)
    assert registry.read_ood_fit(folder, {"ood": None}) is None
    older = {"ood": {"version": 1, "dim": 4, "class_means": [], "precision": []}}
    assert registry.read_ood_fit(folder, older) is None
    assert "OOD fit of an older kind; its `ood` is the fallback score" in caplog.text
    np.save(folder / registry.OOD_INDEX_FILE, index[:5])
    with pytest.raises(registry.RegistryError, match=r"shape \(5, 4\), its card says \(30, 4\)"):
        registry.read_ood_fit(folder, card)
    (folder / registry.OOD_INDEX_FILE).write_bytes(b"not numpy")
    with pytest.raises(registry.RegistryError, match="cannot read the OOD index"):
        registry.read_ood_fit(folder, card)


def test_invalid_name_is_refused(config):
    with pytest.raises(registry.RegistryError, match="invalid model name"):
        registry.next_version(config.model_dir, "../evil")


def test_fingerprint_depends_on_paths_and_contents_not_order():
    a = fingerprints.dataset_fingerprint([("0/a.png", "11"), ("1/b.png", "22")])
    assert a == fingerprints.dataset_fingerprint([("1/b.png", "22"), ("0/a.png", "11")])
    assert a != fingerprints.dataset_fingerprint([("0/a.png", "11"), ("1/b.png", "23")])
    assert a != fingerprints.dataset_fingerprint([("1/a.png", "11"), ("1/b.png", "22")])


def test_resolve_latest_exact_and_errors(sessions, config):
    make_version(sessions, config, activate=False)
    make_version(sessions, config, activate=False)
    with sessions() as session:
        assert registry.resolve(session, "m").version == 2
        assert registry.resolve(session, "m:1").version == 1
        with pytest.raises(registry.RegistryError, match=r"no model version 'm:9'.*m:1, m:2"):
            registry.resolve(session, "m:9")
        with pytest.raises(registry.RegistryError, match="no model version 'other'"):
            registry.resolve(session, "other")
        with pytest.raises(registry.RegistryError, match="invalid version"):
            registry.resolve(session, "m:latest")


def test_classes_mismatch_cannot_be_activated(sessions, config, run_cli):
    make_version(sessions, config, classes=["cat", "dog"], activate=False)
    with pytest.raises(registry.RegistryError, match="differ from the project's class list"):
        activate(sessions, "m")
    result = run_cli("activate", "m:1")
    assert result.exit_code == 1 and "cannot be activated" in result.output
    assert states(sessions) == {"m:1": "inactive"}


def test_empty_pool_activates_at_once_and_exactly_one_is_active(sessions, config):
    make_version(sessions, config, activate=False)
    make_version(sessions, config, activate=False)
    assert activate(sessions, "m:1") == "active"
    assert activate(sessions, "m:2") == "active"
    assert states(sessions) == {"m:1": "inactive", "m:2": "active"}


def test_the_first_version_is_active_at_once_and_the_next_pending(sessions, config, tmp_path):
    ingest_pngs(sessions, config, tmp_path, 6)
    make_version(sessions, config)
    assert states(sessions) == {"m:1": "active"}  # nothing else to serve meanwhile
    make_version(sessions, config)
    assert states(sessions) == {"m:1": "active", "m:2": "pending"}
    with sessions() as session:
        assert versions.active_version(session).version == 1
        assert versions.scoring_progress(session, registry.resolve(session, "m:2")) == (0, 6)
    make_worker(sessions, config).run(once=True, progress=False)
    assert states(sessions) == {"m:1": "inactive", "m:2": "active"}


def test_pending_version_takes_over_after_scoring(sessions, config, tmp_path, run_cli):
    make_version(sessions, config)  # m:1 active on an empty pool
    ingest_pngs(sessions, config, tmp_path, 6)
    make_worker(sessions, config).run(once=True, progress=False)
    make_version(sessions, config, activate=False)
    result = run_cli("activate", "m")
    assert result.exit_code == 0 and "pending: scored 0/6" in result.output
    assert states(sessions) == {"m:1": "active", "m:2": "pending"}
    assert "m:2" in run_cli("workers").output  # the pending version is the one being scored
    worker = make_worker(sessions, config, batch_size=4)
    assert worker.step() == 4
    assert states(sessions) == {"m:1": "active", "m:2": "pending"}
    assert worker.step() == 2
    assert states(sessions) == {"m:1": "inactive", "m:2": "active"}
    assert count(sessions, Score) == 12
    output = run_cli("models").output
    assert "m:2" in output and "active" in output and "scored 6/6" in output


def test_a_new_pending_request_replaces_the_old_one(sessions, config, tmp_path):
    make_version(sessions, config)
    ingest_pngs(sessions, config, tmp_path, 2)
    make_version(sessions, config, activate=False)
    make_version(sessions, config, activate=False)
    assert activate(sessions, "m:2") == "pending"
    assert activate(sessions, "m:3") == "pending"
    assert states(sessions) == {"m:1": "active", "m:2": "inactive", "m:3": "pending"}
    with sessions() as session, session.begin():
        assert versions.version_to_score(session).version == 3
        assert registry.promote_if_scored(session) is None
