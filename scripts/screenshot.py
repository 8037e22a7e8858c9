"""Save the README's screenshots to docs/: the review page (review.png, 1360x800, and at
1024x640 and 1920x1080) and the dashboard at 1366 wide (dashboard.png).

Builds a throwaway deployment in a temporary folder: the bundled MNIST demo
digits with made-up but plausible MC-dropout scores (no TensorFlow), one
labeler with a few labels, the real app on a random port, and headless Chromium
(the Debian package at /usr/bin/chromium, driven by Playwright). Usage:
``.venv/bin/python scripts/screenshot.py [OUT_DIR]``.
"""

from __future__ import annotations

import io
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from reviewer import create_app  # noqa: E402
from reviewer.core import db, settings, users  # noqa: E402
from reviewer.core.config import TestConfig  # noqa: E402
from reviewer.core.files import FileStore  # noqa: E402
from reviewer.core.images import inspect_image  # noqa: E402
from reviewer.core.schema import Image, ModelVersion, Score  # noqa: E402
from reviewer.demo.data import _mnist  # noqa: E402
from reviewer.review import answers  # noqa: E402

CLASSES = [str(d) for d in range(10)]
LABELED = 12  # labels given before the screenshots, so the dashboard has figures
SHOTS = (  # file, viewport, page, whole page?
    ("review.png", (1360, 800), "/review?strategy=bald", False),
    ("review-1024x640.png", (1024, 640), "/review?strategy=bald", False),
    ("review-1920x1080.png", (1920, 1080), "/review?strategy=bald", False),
    ("dashboard.png", (1366, 900), "/dashboard", True),
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def fake_scores(label: int, rng: np.random.Generator, samples: int = 50) -> dict:
    """MC samples [T, K] that mostly agree on ``label`` but hesitate towards a rival."""
    rival = int(rng.choice([c for c in range(10) if c != label]))
    doubt = rng.uniform(0.0, 2.5)
    logits = np.full((samples, 10), -2.0) + rng.normal(0, 0.6, (samples, 10))
    logits[:, label] += 3.0
    logits[:, rival] += 3.0 - doubt + rng.normal(0, 1.2, samples)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mean, std = p.mean(axis=0), p.std(axis=0)
    entropy = float(-(mean * np.log(mean)).sum())
    expected = float(-(p * np.log(p)).sum(axis=1).mean())
    top = np.sort(mean)[::-1]
    winner = int(mean.argmax())
    votes = np.bincount(p.argmax(axis=1), minlength=10)
    return dict(
        predicted_label=str(winner),
        mean=mean.tolist(),
        std=std.tolist(),
        entropy=entropy,
        expected_entropy=expected,
        mutual_info=entropy - expected,
        variance=float(p[:, winner].var()),
        variation_ratio=1 - votes.max() / samples,
        margin=float(top[0] - top[1]),
        self_confidence=float(mean[label]),
        normalized_margin=float(mean[label] - np.delete(mean, label).max()),
        ood=float(rng.uniform(0, 1)),
        samples=samples,
    )


def build(root: Path, count: int = 40):
    config = TestConfig.in_directory(root)
    db.upgrade(config.database_url)
    engine = db.make_engine(config.database_url)
    store = FileStore(config.data_dir)
    pixels, labels = _mnist()
    rng = np.random.default_rng(7)
    with db.session_factory(engine)() as s, s.begin():
        settings.set_classes(s, CLASSES)
        mv = ModelVersion(
            name="digits",
            version=1,
            path="models/digits/1",
            classes=CLASSES,
            input_spec={},
            mc_samples=50,
            metrics={},
            is_active=True,
        )
        s.add(mv)
        lee = users.create_user(s, "lee", "lee-password")
        s.flush()
        for i in rng.choice(len(labels), count, replace=False):
            buffer = io.BytesIO()
            PILImage.fromarray(pixels[i]).save(buffer, format="PNG")
            data = buffer.getvalue()
            info = inspect_image(data, max_pixels=10**6)
            image = Image(
                sha256=info.sha256,
                path=store.put(data, info),
                original_filename=f"pool/mnist_{i:05d}.png",
                width=28,
                height=28,
                mode="L",
                given_label=str(labels[i]),
            )
            s.add(image)
            s.flush()
            s.add(
                Score(image_id=image.id, model_version_id=mv.id, **fake_scores(int(labels[i]), rng))
            )
        store.sync()
    with db.write_transaction(db.session_factory(engine)) as s:  # labels for the dashboard
        first = s.scalars(select(Image.id).order_by(Image.id).limit(LABELED)).all()
        for n, image_id in enumerate(first):
            given = s.get(Image, image_id).given_label
            answer = "none_of_these" if n == 0 else given if n % 4 else str((int(given) + 1) % 10)
            answers.submit_label(s, image_id, lee.id, answer, seconds=2.0 + n % 5)
    engine.dispose()
    return config


def main(out_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(build(Path(tmp)))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                out_dir.mkdir(parents=True, exist_ok=True)
                for name, (width, height), path, whole in SHOTS:
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(base + "/login")
                    page.fill("input[name=username]", "lee")
                    page.fill("input[name=password]", "lee-password")
                    page.click("button[type=submit]")
                    page.goto(base + path)
                    if path.startswith("/review"):
                        page.wait_for_selector("#item:not([hidden])")
                        page.wait_for_function("document.getElementById('item-image').complete")
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(out_dir / name), full_page=whole)
                    page.close()
                    print(f"wrote {out_dir / name}")
                browser.close()
        finally:
            server.shutdown()
            app.extensions["reviewer"]["engine"].dispose()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs")
