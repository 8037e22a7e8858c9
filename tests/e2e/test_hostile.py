"""Hostile input in a real browser (headless Chromium): a login redirect never leaves the
site, and markup in stored strings is shown as text, never run."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from reviewer.core import db
from reviewer.core.schema import Image
from tests.support.web import PASSWORDS

pytestmark = pytest.mark.browser
XSS = '<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2</script>'


def _log_in(page, base: str, next_: str) -> None:
    page.goto(f"{base}/login?next={next_}")
    page.fill("input[name=username]", "lee")
    page.fill("input[name=password]", PASSWORDS["lee"])
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize(
    "next_", ["/%09/127.0.0.1:9/x", "/%0A/x", "//127.0.0.1:9/x", "/\\127.0.0.1:9"]
)
def test_a_login_redirect_stays_on_the_site(live_server, browser, next_):
    page = browser.new_page()
    _log_in(page, live_server.url, next_)
    assert page.url.startswith(live_server.url + "/"), page.url
    assert re.search(r"/queue$", page.url), page.url


def test_markup_in_names_is_text_not_code(live_server, browser):
    engine = db.make_engine(live_server.config.database_url)
    with db.session_factory(engine)() as s, s.begin():
        s.execute(update(Image).values(original_filename=XSS + ".png"))
    engine.dispose()
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _log_in(page, live_server.url, "/queue")
    for path in ("/queue", "/review", "/dashboard"):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss === undefined"), path
    assert not dialogs
    page.goto(live_server.url + "/queue")
    assert XSS in page.inner_text("table.queue")  # shown as the text it is
