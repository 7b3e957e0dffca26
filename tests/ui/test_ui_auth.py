"""The dashboard behind keys, in a real Chromium: a key entered once into the login form
is kept in an HttpOnly, SameSite=Strict cookie; no key gives the 401 page, a key without
the read scope the 403 page, and a revoked key stops working at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from inferloop.store.api_keys import issue_key, revoke_key


@dataclass
class Locked:
    url: str
    engine: object
    read: object
    ingest: object


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Locked]:
    """An empty store with keys issued: auth is on (see `inferloop.server.auth`)."""
    from serving import served

    from inferloop.server import create_app
    from inferloop.settings import Settings
    from inferloop.store import create_engine_for, upgrade

    folder = tmp_path_factory.mktemp("locked")
    url = f"sqlite:///{folder / 'inferloop.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    with engine.begin() as connection:
        read = issue_key(connection, name="viewer", scopes=["read"], now_ns=time.time_ns())
        ingest = issue_key(connection, name="sdk", scopes=["ingest"], now_ns=time.time_ns())
    with served(create_app(Settings(database_url=url), engine=engine)) as base:
        yield Locked(base, engine, read, ingest)
    engine.dispose()


def _document_errors_only(seen, *statuses: int) -> None:
    """The document's own 401/403 is the answer asked for; anything else is a failure."""
    others = [e for e in seen.console_errors if not any(str(s) in e for s in statuses)]
    assert others == [] and seen.page_errors == [] and seen.foreign == []


def _login(page, url: str, key: str):
    page.goto(url + "/ui/login?next=/ui/alerts", wait_until="networkidle")
    page.fill('input[name="key"]', key)
    with page.expect_navigation(wait_until="networkidle") as navigation:
        page.click('button[type="submit"]')
    return navigation.value


def test_a_page_without_a_key_is_the_401_page_with_a_way_to_sign_in(locked, new_page):
    page, seen = new_page()
    response = page.goto(locked.url + "/ui/findings", wait_until="networkidle")

    assert response.status == 401
    assert "a key is needed" in page.locator("h1").inner_text()
    assert page.locator('a[href^="/ui/login?next="]').count() == 1
    _document_errors_only(seen, 401)


def test_a_read_key_entered_once_opens_every_page_and_is_not_readable_by_script(locked, new_page):
    page, seen = new_page()
    response = _login(page, locked.url, locked.read.token)

    assert response.status == 200 and page.url.endswith("/ui/alerts")
    (cookie,) = page.context.cookies()
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/ui")
    assert page.evaluate("document.cookie") == ""
    for path in ("/ui/", "/ui/findings", "/ui/alerts"):
        assert page.goto(locked.url + path, wait_until="networkidle").status == 200
        assert locked.read.token not in page.content()
    assert page.locator(".empty").count() >= 1  # an empty store says what is missing
    seen.assert_clean()


def test_a_wrong_key_is_refused_at_the_login_form_and_no_cookie_is_set(locked, new_page):
    page, seen = new_page()
    response = _login(page, locked.url, "il_not-a-key")

    assert response.status == 401
    assert "not valid" in page.locator('[role="alert"]').inner_text()
    assert page.context.cookies() == []
    assert "il_not-a-key" not in page.content()
    _document_errors_only(seen, 401)


def test_a_key_without_the_read_scope_gets_the_403_page(locked, new_page):
    page, seen = new_page()
    page.context.add_cookies(
        [{"name": "inferloop_key", "value": locked.ingest.token, "url": locked.url + "/ui/"}]
    )
    response = page.goto(locked.url + "/ui/", wait_until="networkidle")

    assert response.status == 403
    assert "may not do that" in page.locator("h1").inner_text()
    assert "ingest" in page.locator("p.error").inner_text()
    _document_errors_only(seen, 403)


def test_a_revoked_key_stops_opening_pages_at_once(locked, new_page):
    with locked.engine.begin() as connection:
        doomed = issue_key(connection, name="temp", scopes=["read"], now_ns=time.time_ns())
    page, seen = new_page()
    assert _login(page, locked.url, doomed.token).status == 200

    with locked.engine.begin() as connection:
        revoke_key(connection, doomed.id, now_ns=time.time_ns())
    response = page.goto(locked.url + "/ui/", wait_until="networkidle")

    assert response.status == 401
    _document_errors_only(seen, 401)


def test_making_a_silence_needs_the_admin_scope(locked, new_page):
    page, seen = new_page()
    _login(page, locked.url, locked.read.token)
    page.goto(locked.url + "/ui/alerts", wait_until="networkidle")
    page.fill('form.silence textarea[name="matchers"]', 'model="fraud"')
    with page.expect_navigation(wait_until="networkidle") as navigation:
        page.click("form.silence button")

    assert navigation.value.status == 403
    assert "this endpoint needs admin" in page.locator("p.error").inner_text()
    _document_errors_only(seen, 403)
