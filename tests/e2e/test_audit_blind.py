"""The random audit in headless Chromium: an audit item is shown blind (no prediction, bars,
scores or given label, no Accept button) and Enter does not label it; a digit key does, and
the label records that the audit handed it out."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from reviewer.core import db
from reviewer.core.schema import Label, Score
from tests.support.web import PASSWORDS

pytestmark = pytest.mark.browser


def test_an_audit_item_is_shown_blind(live_server, browser):
    engine = db.make_engine(live_server.config.database_url)
    with db.session_factory(engine)() as s, s.begin():
        s.execute(update(Score).values(audit_key=Score.image_id))  # walk in id order
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/login")
    page.fill("input[name=username]", "lee")
    page.fill("input[name=password]", PASSWORDS["lee"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/queue"))
    page.goto(live_server.url + "/review?strategy=audit")
    page.wait_for_selector("#item:not([hidden])")

    assert page.locator("#blind-note").is_visible()
    assert "model's answer is hidden" in page.locator("#blind-note").inner_text()
    for hidden in ("#model-view", "#predicted", "#bars", "#metrics", "#accept"):
        assert not page.locator(hidden).is_visible(), hidden
    assert (
        page.locator("#item-reason").inner_text() == "random audit: measures the model's error rate"
    )
    first = page.locator("#item-id").inner_text()

    page.keyboard.press("Enter")  # no default answer on a blind item
    page.wait_for_timeout(300)
    assert page.locator("#item-id").inner_text() == first
    assert page.locator("#done-count").inner_text() == "0 labeled this session"

    page.keyboard.press("3")
    page.wait_for_function("id => document.getElementById('item-id').textContent !== id", arg=first)
    assert page.locator("#blind-note").is_visible()  # the walk's next item: blind too
    assert errors == []
    with db.session_factory(engine)() as s:
        rows = s.execute(select(Label.image_id, Label.label, Label.strategy)).all()
    engine.dispose()
    assert [(f"#{r[0]}", r[1], r[2]) for r in rows] == [(first, "3", "audit")]
