"""Benchmark: MC-dropout scoring of a real-sized RGB model. A MobileNetV2 classifier at 96x96x3
(Keras applications, ``weights=None``: nothing is downloaded) with a plain Keras ``Dropout``
before its Dense head, saved as a user's ``.keras`` file and brought in through ``reviewer
register`` in a scratch project, exactly as a user would; then the registered version's model
is timed like the default one (`reviewer.bench.scoring.throughput`): the classic recipe (T calls
of ``model.predict``) against reviewer's sampler, whose backbone runs once per image.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from reviewer.bench import project as scratch
from reviewer.demo.data import DIGITS

SIZE = 96
DROPOUT = 0.2  # MobileNetV2's own classifier dropout rate in Keras applications
NAME = "rgb"


def build_rgb_model(*, size: int = SIZE, classes: int = len(DIGITS), seed: int = 0):
    """The user's model: MobileNetV2 at size x size x 3 with Dropout before a Dense head."""
    from reviewer.ml import mc

    calibration = rgb_images(64, size=size, seed=seed + 1)
    return mc.build_mobilenet_classifier(calibration, classes, dropout=DROPOUT, seed=seed)


def rgb_images(count: int, *, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """``count`` smooth random RGB images in [0, 1], float32 [N, size, size, 3]."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (count, size // 8, size // 8, 3)).astype(np.float32)
    return np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)


def register_as_a_user(work: Path, *, size: int = SIZE):
    """Save the model to ``work/user_model.keras``, run ``reviewer register`` on a scratch
    project, and return (the registered version's MC model, the register command's output)."""
    from sqlalchemy import select

    from reviewer.core.schema import ModelVersion
    from reviewer.ml import mc
    from reviewer.training import registry

    path = work / "user_model.keras"
    build_rgb_model(size=size).save(path)
    project = scratch.open_project(work / "project")
    env = {
        **os.environ,
        "REVIEWER_DATABASE_URL": project.config.database_url,
        "REVIEWER_DATA_DIR": str(project.config.data_dir),
        "REVIEWER_MODEL_DIR": str(project.config.model_dir),
    }
    command = [sys.executable, "-m", "reviewer", "register", str(path), "--name", NAME]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"reviewer register failed: {done.stdout}{done.stderr}")
    with project.sessions() as session:
        newest = select(ModelVersion).where(ModelVersion.name == NAME)
        version = session.scalars(newest.order_by(ModelVersion.version.desc())).first()
        model_path = os.path.join(version.path, registry.MODEL_FILE)
    return mc.load_model(model_path), done.stdout.strip()
