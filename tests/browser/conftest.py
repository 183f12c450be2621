"""A real browser for the owner's journey: Playwright driving Debian's Chromium (installed by
`make test`), against the live app, the Xero and QuickBooks sandboxes and a real RQ worker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer

CHROMIUM = os.environ.get("DUNWELL_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).with_name("screenshots")


@pytest.fixture
def web(app) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def axe_problems(page) -> list[str]:  # type: ignore[no-untyped-def]
    """axe-core run inside the page: the serious and critical violations, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, timeout=60_000)


def run_jobs_off_the_page(app, page) -> None:  # type: ignore[no-untyped-def]
    """The queued jobs run by a real worker (tests.integration.conftest.run_jobs) with the tab
    on about:blank. An organisation's page reloads itself when a sync ends (static/org.js);
    left open while the sync ran, its reload could land after the test's next `goto` and
    interrupt it ("Navigation ... is interrupted by another navigation to /orgs/N")."""
    from tests.integration.conftest import run_jobs

    page.goto("about:blank")
    run_jobs(app)
