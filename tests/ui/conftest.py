"""Browser fixtures: Debian's Chromium driven by Playwright, against a real server.

The server is the app under the embedded server on a loopback port, on a migrated SQLite
store seeded through the real ingest path (`ui_seed`). A missing Chromium or Playwright
skips with the reason, or fails under INFERLOOP_REQUIRE_SERVICES=1 (CI), as the shared
services do (see tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ui_seed import Seeded, seed

# Read at import: the root conftest clears INFERLOOP_* before each test.
_REQUIRE_SERVICES = os.environ.get("INFERLOOP_REQUIRE_SERVICES") == "1"
_CHROMIUM = os.environ.get("INFERLOOP_TEST_CHROMIUM") or shutil.which("chromium")
_TO_DOCS = os.environ.get("INFERLOOP_SCREENSHOTS_TO_DOCS") == "1"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "screenshots"
"""Every screenshot, at both widths, as a test artifact (ignored by git)."""
DOCS = ROOT / "docs" / "screenshots"
"""The README's screenshots (1280 px), rewritten with INFERLOOP_SCREENSHOTS_TO_DOCS=1."""


def _missing(reason: str) -> None:
    if _REQUIRE_SERVICES:
        pytest.fail(f"{reason} (required because INFERLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that drives the browser is marked `browser` (`-m "not browser"` leaves it out)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser(request: pytest.FixtureRequest):
    """A headless Chromium, launched once; its and Playwright's versions are logged."""
    if not _CHROMIUM or not Path(_CHROMIUM).exists():
        _missing(
            "no chromium on PATH: apt-get install -y chromium (or set INFERLOOP_TEST_CHROMIUM)"
        )
    try:
        from importlib.metadata import version

        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install 'playwright>=1.64,<1.65'")
    playwright = sync_playwright().start()
    launched = playwright.chromium.launch(executable_path=_CHROMIUM, headless=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    line = (
        f"browser: chromium {launched.version} at {_CHROMIUM}, playwright {version('playwright')}"
    )
    if reporter is not None:
        reporter.write_line(line)
    print(line)
    yield launched
    launched.close()
    playwright.stop()


@dataclass
class Dashboard:
    url: str
    engine: object
    seeded: Seeded


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The server on a seeded store (auth off: the embedded default on loopback)."""
    from serving import served

    from inferloop.server import create_app
    from inferloop.settings import Settings
    from inferloop.store import create_engine_for, upgrade

    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'inferloop.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    seeded = seed(engine, now_s=time.time(), report_dir=folder)
    app = create_app(Settings(database_url=url, data_dir=str(folder)), engine=engine)
    with served(app) as base:
        yield Dashboard(base, engine, seeded)
    engine.dispose()


@dataclass
class Watched:
    """What a page did that a clean page must not: kept per browser context."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.console_errors == []
        assert self.page_errors == []
        assert self.failed == []
        assert self.foreign == []


def watch(context, page) -> Watched:
    """Refuse and record every request not to 127.0.0.1; record errors and failures."""
    seen = Watched()

    def route(route_) -> None:
        if urlsplit(route_.request.url).hostname == "127.0.0.1":
            route_.continue_()
        else:
            seen.foreign.append(route_.request.url)
            route_.abort()

    context.route("**/*", route)
    page.on("console", lambda m: seen.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    page.on("requestfailed", lambda r: seen.failed.append(f"{r.url} {r.failure}"))
    page.on("request", lambda r: seen.requests.append(r.url))
    return seen


@pytest.fixture
def new_page(browser):
    """`new_page(width)` → (page, watched); contexts are closed after the test."""
    contexts = []

    def make(width: int = 1280, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        return page, watch(context, page)

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """`screenshot(page, name, width)`: a full-page PNG as an artifact (see `ARTIFACTS`)."""
    return _screenshot


def _screenshot(page, name: str, width: int) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    if _TO_DOCS and width == 1280:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / f"{name}.png")
    return path
