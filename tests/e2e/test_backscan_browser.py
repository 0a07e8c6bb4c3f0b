"""The portal's back-scan line in headless Chromium: an artist adds an alias, the page says
how many earlier uploads were checked and how many name them (updated by its script until
the back-scan is done), and the upload found shows among their findings. Screenshots as in
test_web_browser."""

# ruff: noqa: F811  (pytest fixtures imported from test_web_browser are test parameters here)

from __future__ import annotations

from pathlib import Path

from detectors.results import TextField
from storage.engine import create_db_engine
from storage.store import Store
from tests.e2e.test_web_browser import (  # noqa: F401
    DESKTOP,
    TIMEOUT_MS,
    browser,
    live,
    shots,
    sign_in,
    snap,
    template,
)

DONE = "#backscan:not([data-running])"  # a selector: the page's CSP allows no eval


def record_upload_naming(data_dir: Path, alias: str) -> int:
    """An upload recorded before the artist had ``alias``; returns how many are recorded."""
    engine = create_db_engine(f"sqlite:///{data_dir / 'stylewatch.db'}")
    try:
        store = Store(engine)
        text = TextField("description", f"soft washes after {alias}")
        store.record_upload("civitai", "55501", "ink dreams", hub_text=(text,))
        return store.counts().uploads
    finally:
        engine.dispose()


def test_an_alias_added_in_the_portal_backscans(browser, live, shots, tmp_path):
    url, _ = live
    uploads = record_upload_naming(tmp_path / "data", "inkmira")
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, url, "mira@example.org")
    assert page.locator("#backscan").count() == 0

    page.fill("input[name=alias][type=text]", "inkmira")
    page.click("text=Add alias")

    page.locator(DONE).wait_for()
    line = page.inner_text("#backscan")
    assert line == f"Checked {uploads} earlier uploads: 3 name you."
    page.reload()
    assert "ink dreams" in page.inner_text("#findings")
    assert page.inner_text("#backscan") == line
    snap(page, shots, "portal-backscan")
    assert errors == []
    page.close()
