"""End to end in headless Chromium: log in, queue, label by keyboard, undo, skip, dashboard."""

from __future__ import annotations

import re

import pytest

from tests.support.web import PASSWORDS

pytestmark = pytest.mark.browser


def _item_id(page) -> str:
    return page.locator("#item-id").inner_text()


def test_review_flow(live_server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    base = live_server.url

    page.goto(base + "/queue")
    assert "/login" in page.url
    page.fill("input[name=username]", "lee")
    page.fill("input[name=password]", PASSWORDS["lee"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/queue"))
    assert page.locator("table.queue tbody tr").count() == 10

    page.select_option("#strategy", "entropy")
    page.wait_for_url(re.compile(r"strategy=entropy"))
    page.click("#start-review")
    page.wait_for_selector("#item:not([hidden])")
    assert page.evaluate("document.getElementById('item-image').complete")

    # Three labels by keyboard: a digit, "n" (none of these), "u" (unsure). Enter accepts only
    # a confident prediction (tests/e2e/test_review_screen.py), and the entropy queue's top
    # items are the unconfident ones.
    labeled = []
    for key in ("7", "n", "u"):
        current = _item_id(page)
        labeled.append(current)
        page.keyboard.press(key)
        page.wait_for_function(
            "id => document.getElementById('item-id').textContent !== id", arg=current
        )
    assert page.locator("#done-count").inner_text() == "3 labeled this session"
    assert len(set(labeled)) == 3

    # Undo brings the last labeled item back without a page reload.
    page.keyboard.press("z")
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent === id", arg=labeled[-1]
    )
    assert page.locator("#done-count").inner_text() == "2 labeled this session"

    # Skip it: the next item is another one.
    page.keyboard.press("s")
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent !== id", arg=labeled[-1]
    )
    assert re.match(r"held for \d+:\d\d", page.locator("#lease").inner_text())

    # docs/review.png (the README's) comes from scripts/screenshot.py with real digits.
    page.screenshot(path=str(tmp_path / "review.png"))
    assert (tmp_path / "review.png").stat().st_size > 10_000

    page.goto(base + "/dashboard")
    assert page.locator("#count-labels").inner_text() == "2"
    assert page.locator("#count-reviewed").inner_text() == "2"

    page.click("#logout")
    page.wait_for_url(re.compile(r"/login"))
    page.goto(base + "/queue")
    assert "/login" in page.url
    assert not errors, errors
