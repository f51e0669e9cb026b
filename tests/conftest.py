from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Saved optimised graphs go to a folder of this run's, not the user's ~/.cache; servers
    # and CLIs the tests start inherit it.
    os.environ["ALPHACUT_CACHE_DIR"] = tempfile.mkdtemp(prefix="alphacut-test-cache-")


@pytest.fixture(scope="session")
def session():
    """One real u2netp session for the whole run."""
    from alphacut import RuntimeOptions, new_session

    # rembg runs on ONNX Runtime, so exact comparisons with it use the same runtime.
    return new_session("u2netp", runtime=RuntimeOptions(backend="onnxruntime"))


# The web page's fixtures (tests/web.py has the helpers they use).


@pytest.fixture(scope="module")
def base_url():
    from alphacut.server import ServerSettings
    from web import running_server

    with running_server(ServerSettings()) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api

    from web import CHROMIUM, LAUNCH_ARGS

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught exceptions thrown by the page during one test."""
    return []


@pytest.fixture
def page(browser, base_url: str, page_errors: list[str]):
    from web import open_page

    context, page = open_page(
        browser, base_url, page_errors, viewport={"width": 1280, "height": 900}
    )
    try:
        yield page
    finally:
        context.close()
