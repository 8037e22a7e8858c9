"""Hostile uploads: over the byte, pixel or decoded-size limits, not images, polyglots, names
that try to be paths or markup; each refused with the right status, nothing half stored."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

from reviewer import create_app
from reviewer.core import users
from tests.support.images import png_bytes
from tests.support.web import login


def _token(sessions, username: str) -> str:
    with sessions() as s, s.begin():
        return users.create_token(s, users.require_user(s, username))[1]


def sixteen_bit_png(side: int) -> bytes:
    """A flat 16-bit grayscale PNG: a few hundred KB that decode to side x side x 2 bytes."""
    buffer = io.BytesIO()
    PILImage.fromarray(np.zeros((side, side), dtype=np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_validates_and_limits_bytes_and_pixels(config, accounts, sessions):
    from reviewer import create_app

    app = create_app(config.with_(max_upload_bytes=20_000, max_image_pixels=100 * 100))
    client = app.test_client()
    admin = {"Authorization": "Bearer " + _token(sessions, "ada")}

    def upload(data: bytes, name="d.png", **form):
        return client.post(
            "/api/images", headers=admin, data={"file": (io.BytesIO(data), name), **form}
        )

    created = upload(png_bytes(1), name="../../<b>x.png", given_label="4")
    assert created.status_code == 201, created.get_json()
    image = created.get_json()["image"]
    assert image["original_filename"] == "<b>x.png" and image["given_label"] == "4"
    assert upload(png_bytes(1)).status_code == 200  # the same bytes twice add nothing
    assert upload(_png(101, 100)).status_code == 413  # pixels
    assert "too large" in upload(_png(101, 100)).get_json()["error"]
    assert upload(b"\x89PNG" + b"\0" * 30_000).status_code == 413  # bytes
    assert upload(b"not an image").status_code == 400
    assert upload(png_bytes(2), given_label="cat").status_code == 400
    assert client.post("/api/images", headers=admin).status_code == 400
    app.extensions["reviewer"]["engine"].dispose()


def test_a_small_file_that_decodes_to_gigabytes_is_refused(config, accounts, sessions):
    app = create_app(config.with_(max_decoded_bytes=64 * 2**20))
    client = app.test_client()
    admin = {"Authorization": "Bearer " + _token(sessions, "ada")}
    data = sixteen_bit_png(9_400)  # 9400 x 9400 x 2 bytes: 177 MB once decoded
    assert len(data) < 1_000_000
    reply = client.post("/api/images", headers=admin, data={"file": (io.BytesIO(data), "b.png")})
    assert reply.status_code == 413
    assert "REVIEWER_MAX_DECODED_BYTES" in reply.get_json()["error"]
    app.extensions["reviewer"]["engine"].dispose()


def test_a_polyglot_is_stored_and_served_as_the_image_it_is(config, accounts, sessions):
    app = create_app(config)
    client = app.test_client()
    admin = {"Authorization": "Bearer " + _token(sessions, "ada")}
    trailer = b"<html><script>alert(1)</script></html>"  # after IEND: HTML sniffers like it
    data = png_bytes(7) + trailer
    reply = client.post(
        "/api/images", headers=admin, data={"file": (io.BytesIO(data), "page.html")}
    )
    assert reply.status_code == 201
    sha = reply.get_json()["image"]["sha256"]
    login(client, "ada")  # images are served to logged-in browsers, not to API tokens
    served = client.get(f"/images/{sha}")
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in served.headers["Content-Security-Policy"]
    html_only = client.post(
        "/api/images", headers=admin, data={"file": (io.BytesIO(trailer), "x.png")}
    )
    assert html_only.status_code == 400
    app.extensions["reviewer"]["engine"].dispose()
