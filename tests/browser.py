"""Headless Chromium for tests: Debian's chromium driven by Playwright, every outside request blocked.

Usage (one browser per test module)::

    from browser import launch, open_page

    @pytest.fixture(scope="module")
    def chromium():
        with launch() as b:
            yield b

    def test_x(chromium, tmp_path):
        with open_page(chromium, path) as page:     # page.blocked / page.console_errors / page.dialogs
            ...

A request is allowed only for ``file:``, ``data:``, ``blob:`` and ``about:`` URLs; every other
one is aborted and recorded in ``page.blocked``.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
ALLOWED_SCHEMES = ("file:", "data:", "blob:", "about:")


def available() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return "Debian's chromium is not installed (make browser-deps)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


@contextmanager
def launch():
    """A headless Chromium browser (skips the test when chromium or playwright is missing)."""
    reason = available()
    if reason:
        if os.environ.get("CI"):  # CI installs chromium (make test): a missing browser is a failure there
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                    args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser, path: str | Path | None = None, *, width: int = 1200, height: int = 800, wait_ms: int = 0):
    """A fresh context and page with outside requests aborted and console errors and dialogs recorded."""
    context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
    page = context.new_page()
    page.blocked = []
    page.console_errors = []
    page.dialogs = []

    def route(r):
        url = r.request.url
        if url.startswith(ALLOWED_SCHEMES):
            r.continue_()
        else:
            page.blocked.append(url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    page.on("requestfailed", lambda req: None if req.url.startswith(ALLOWED_SCHEMES) or req.url in page.blocked
            else page.blocked.append(req.url))

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        if path is not None:
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            if wait_ms:
                page.wait_for_timeout(wait_ms)
        yield page
    finally:
        context.close()


def pixel_stddev(png: bytes) -> float:
    """Standard deviation of the grey levels of a PNG screenshot (0 for a blank image)."""
    import io

    import numpy as np
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(img.std())
