"""The review screen as a labeler uses it, in headless Chromium: a strategy switch, the queue's
filters, the default answer, shortcuts and zoom, the layout at two screen sizes, labels kept
across a reload, and live scoring progress on the queue page."""

from __future__ import annotations

import re

import pytest

from reviewer.core import db
from reviewer.core.schema import Label, ModelVersion, Score
from tests.support.web import PASSWORDS

pytestmark = pytest.mark.browser


def _login(browser, live_server, width=1360, height=860):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.goto(live_server.url + "/login")
    page.fill("input[name=username]", "lee")
    page.fill("input[name=password]", PASSWORDS["lee"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/queue"))
    return page


def _api(page, path):
    return page.evaluate("path => fetch(path).then(r => r.json())", path)


def _shown(page, url):
    page.goto(url)
    page.wait_for_selector("#item:not([hidden])")
    return int(page.locator("#item-id").inner_text().lstrip("#"))


def _confidence(item):
    return item["mean"][item["classes"].index(item["predicted_label"])]


def test_switching_strategy_hands_out_the_new_queues_top_with_its_reason(live_server, browser):
    page = _login(browser, live_server)
    held = _shown(page, live_server.url + "/review?strategy=mislabeled")
    page.select_option("#strategy", "ood")
    page.wait_for_url(re.compile(r"strategy=ood"))
    page.wait_for_selector("#item:not([hidden])")
    top = _api(page, "/api/queue?strategy=ood&limit=1")["items"][0]
    assert top["id"] != held
    assert page.locator("#item-id").inner_text() == f"#{top['id']}"
    assert page.locator("#item-reason").inner_text() == top["reason"]
    assert top["reason"].startswith("OOD ")
    assert not page.errors, page.errors


def test_start_reviewing_keeps_the_queue_filters(live_server, browser):
    page = _login(browser, live_server)
    items = _api(page, "/api/queue?strategy=mislabeled&limit=50")["items"]
    wanted = items[-1]["predicted_label"]  # not the top's class, most likely
    assert any(i["predicted_label"] != wanted for i in items)
    page.goto(live_server.url + "/queue?strategy=mislabeled")
    page.select_option("select[name=predicted]", wanted)
    page.wait_for_url(re.compile(r"predicted="))
    page.click("#start-review")
    page.wait_for_selector("#item:not([hidden])")
    assert page.locator("#predicted").inner_text() == wanted
    assert f"predicted {wanted}" in page.locator("#filters").inner_text()
    expected = [i["id"] for i in items if i["predicted_label"] == wanted]
    seen = [int(page.locator("#item-id").inner_text().lstrip("#"))]
    while len(seen) < len(expected):
        page.keyboard.press("u")
        page.wait_for_function(
            "id => document.getElementById('item-id').textContent !== id", arg=f"#{seen[-1]}"
        )
        seen.append(int(page.locator("#item-id").inner_text().lstrip("#")))
    assert seen == expected
    page.keyboard.press("u")
    page.wait_for_selector("#empty:not([hidden])")  # the filtered queue is done
    assert not page.errors, page.errors


def test_accept_is_the_default_only_when_the_model_is_confident(live_server, browser):
    page = _login(browser, live_server)
    items = _api(page, "/api/queue?strategy=entropy&limit=50")["items"]
    unsure = next(i for i in items if _confidence(i) < 0.5)
    sure = next(i for i in items if _confidence(i) >= 0.5)
    _shown(page, live_server.url + f"/items/{unsure['id']}")
    assert "default" not in page.locator("#accept").get_attribute("class")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('not sure')"
    )
    assert page.locator("#item-id").inner_text() == f"#{unsure['id']}"  # nothing was labeled
    assert _api(page, "/api/labels/recent")["labels"] == []
    _shown(page, live_server.url + f"/items/{sure['id']}")
    assert "default" in page.locator("#accept").get_attribute("class")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent !== id", arg=f"#{sure['id']}"
    )
    recent = _api(page, "/api/labels/recent")["labels"]
    assert [(r["image_id"], r["label"]) for r in recent] == [(sure["id"], sure["predicted_label"])]


def test_labels_survive_a_reload_and_the_item_says_what_you_answered(live_server, browser):
    page = _login(browser, live_server)
    first = _shown(page, live_server.url + "/review?strategy=entropy")
    page.keyboard.press("n")
    page.wait_for_function(  # the next item is shown (and its URL set) after the label
        "id => document.getElementById('item-id').textContent !== id", arg=f"#{first}"
    )
    assert page.locator("#status").inner_text() == f"#{first} labeled None of these."
    page.reload()
    page.wait_for_selector("#item:not([hidden])")
    assert page.locator("#recent").is_visible()
    assert page.locator("#recent-list li").first.text_content() == f"#{first} None of these"
    assert page.locator("#undo").is_enabled()
    assert page.locator("#item-id").inner_text() != f"#{first}"
    page.keyboard.press("z")  # the undo history came from the server
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent === id", arg=f"#{first}"
    )
    assert _api(page, "/api/labels/recent")["labels"] == []
    page.keyboard.press("3")
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent !== id", arg=f"#{first}"
    )
    _shown(page, live_server.url + f"/items/{first}")
    assert (
        page.locator("#your-label").inner_text() == "You labeled this 3. Answer again to change it."
    )
    assert page.locator("#item-reason").inner_text().startswith("entropy ")  # how it was handed out
    assert not page.errors, page.errors


def test_shortcuts_zoom_and_the_layout_at_two_screen_sizes(live_server, browser):
    page = _login(browser, live_server, 1024, 640)
    _shown(page, live_server.url + "/review?strategy=entropy")
    for selector in ("#class-buttons", "#undo", "#accept", "#item-reason"):
        box = page.locator(selector).bounding_box()
        assert box["y"] + box["height"] <= 640, selector  # above the fold
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "undo your last label" in page.locator("#help").inner_text()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    before = page.locator("#item-image").bounding_box()["width"]
    page.keyboard.press("+")
    page.wait_for_function("() => document.body.classList.contains('zoomed')")
    assert page.locator("#item-image").bounding_box()["width"] > before
    big = _login(browser, live_server, 1920, 1080)
    _shown(big, live_server.url + "/review?strategy=entropy")
    assert big.locator("#item-image").bounding_box()["width"] >= 600  # the image uses the space
    assert not page.errors and not big.errors


def test_scoring_progress_moves_without_a_reload(live_server, browser):
    engine = db.make_engine(live_server.config.database_url)
    sessions = db.session_factory(engine)
    with sessions() as s, s.begin():
        active = s.query(ModelVersion).filter_by(is_active=True).one()
        pending = ModelVersion(
            name=active.name,
            version=2,
            path="models/digits/2",
            classes=active.classes,
            input_spec={},
            mc_samples=20,
            metrics={},
            is_active=False,
            activate_when_scored=True,
        )
        s.add(pending)
    page = _login(browser, live_server)
    assert (
        " ".join(page.locator("#progress-pending").inner_text().split())
        == "Scoring digits:2: 0 / 10"
    )
    with sessions() as s, s.begin():
        pending = s.query(ModelVersion).filter_by(version=2).one()
        for score in s.query(Score).order_by(Score.image_id).limit(3).all():
            copy = {
                c.name: getattr(score, c.name) for c in Score.__table__.columns if c.name != "id"
            }
            s.add(Score(**{**copy, "model_version_id": pending.id}))
    page.wait_for_function(
        "() => document.getElementById('progress-pending').textContent"
        ".replace(/\\s+/g, ' ').includes('3 / 10')",
        timeout=10_000,
    )
    engine.dispose()
    assert not page.errors, page.errors


def test_an_undo_that_cannot_happen_says_so_and_moves_on(live_server, browser):
    page = _login(browser, live_server)
    first = _shown(page, live_server.url + "/review?strategy=entropy")
    page.keyboard.press("1")
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent !== id", arg=f"#{first}"
    )
    second = int(page.locator("#item-id").inner_text().lstrip("#"))
    page.keyboard.press("2")
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent !== id", arg=f"#{second}"
    )
    current = page.locator("#item-id").inner_text()
    engine = db.make_engine(live_server.config.database_url)
    with db.write_transaction(db.session_factory(engine)) as s:  # an admin voids the last one
        label = s.query(Label).filter_by(image_id=second).one()
        s.add(
            Label(
                image_id=second,
                user_id=label.user_id,
                label=None,
                undoes_label_id=label.id,
                reason="void",
            )
        )
    engine.dispose()
    page.keyboard.press("z")
    page.wait_for_function(
        "() => document.getElementById('status').textContent.includes('Cannot undo')"
    )
    assert page.locator("#item-id").inner_text() == current  # the item in hand is kept
    page.keyboard.press("z")  # the next undo is the label before it
    page.wait_for_function(
        "id => document.getElementById('item-id').textContent === id", arg=f"#{first}"
    )
    assert not page.errors, page.errors


def test_dashboard_text_is_at_least_11_px_at_1366_wide(live_server, browser):
    page = _login(browser, live_server, 1366, 900)
    _shown(page, live_server.url + "/review?strategy=entropy")
    for key in ("1", "n", "2"):  # a few labels, so the charts have bars
        current = page.locator("#item-id").inner_text()
        page.keyboard.press(key)
        page.wait_for_function(
            "id => document.getElementById('item-id').textContent !== id", arg=current
        )
    page.goto(live_server.url + "/dashboard")
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            return [...svg.querySelectorAll('text')].map(t => [t.textContent,
                parseFloat(getComputedStyle(t).fontSize) * scale]);
        })"""
    )
    assert len(sizes) > 50
    small = [(text, round(px, 1)) for text, px in sizes if px < 11]
    assert not small, small
    names = page.evaluate(
        "() => [...document.querySelectorAll('svg.chart text.bar-label')]"
        ".map(t => t.firstChild.textContent)"
    )
    assert "None of these" in names and "0" in names  # whole names, zero-label classes too
    assert not page.errors, page.errors
