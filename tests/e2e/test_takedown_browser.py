"""Takedowns in headless Chromium: the artist sees "taken down on <date>" in their portal;
a moderator follows the queue's link to the confirmed uploads still up, and finds the
system's takedown in a finding's history. Screenshots as in test_web_browser."""

# ruff: noqa: F811  (pytest fixtures imported from test_web_browser are test parameters here)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.engine import create_db_engine
from storage.store import Store
from storage.takedowns import Takedowns
from storage.triage import TriageStore
from storage.users import UserStore
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


def take_down_one(data_dir: Path, confirmed: list[int], gone: int) -> None:
    """Confirm findings nine days ago; the upload of ``gone`` was seen removed today."""
    engine = create_db_engine(f"sqlite:///{data_dir / 'stylewatch.db'}")
    try:
        moderator = next(u for u in UserStore(engine).list_users() if u.role == "moderator")
        long_ago = datetime.now(UTC) - timedelta(days=9)
        triage = TriageStore(engine, clock=lambda: long_ago)
        for finding_id in confirmed:
            triage.decide(finding_id, moderator.id, "confirm", "her ink style")
        upload_pk = next(f.upload_pk for f in Store(engine).list_findings() if f.id == gone)
        Takedowns(engine).record(upload_pk, status="removed", reason="the version answers 404")
    finally:
        engine.dispose()


def test_takedowns_in_the_portal_and_the_queue(browser, live, shots, tmp_path):
    url, seeded = live
    f = seeded.findings
    take_down_one(tmp_path / "data", [f["mira_v2"], f["wren"]], gone=f["mira_v2"])
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    sign_in(page, url, "mira@example.org")
    assert f"taken down on {today}" in page.inner_text(f"#finding-{f['mira_v2']}")
    assert "taken down" not in page.inner_text(f"#finding-{f['okafor_wc']}")
    snap(page, shots, "portal-taken-down")
    page.click("text=Sign out")

    sign_in(page, url, "mod@example.org")
    page.click("text=Confirmed, still up")
    page.wait_for_load_state()
    assert page.url.endswith("/queue/still-up")
    items = page.locator("#still-up li.item")
    assert items.count() == 1
    assert "wren_lines_xl" in items.first.inner_text()
    assert "9 days ago" in items.first.inner_text()
    snap(page, shots, "still-up")
    page.goto(url + f"/findings/{f['mira_v2']}")
    history = page.inner_text("ol.events")
    assert "taken_down by system" in history and "the version answers 404" in history
    assert errors == []
    page.close()
