"""The web UI in headless Chromium (the system package, driven by Playwright): a moderator
works the queue with the keyboard; an artist manages their portal. Each page is also
screenshotted, at desktop and phone widths, into $STYLEWATCH_SCREENSHOTS (or a temp dir)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.web_env import PASSWORD, XSS, Seeded, build_app, copy_env, evidence_sheet, seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Read at import: the autouse fixture clears STYLEWATCH_* before each test.
SCREENSHOT_DIR = os.environ.get("STYLEWATCH_SCREENSHOTS")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000


class LiveServer:
    """The app on 127.0.0.1:<free port>, served by its own event loop in a thread."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        assert self._ready.wait(30), "the server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = "Chromium not found at /usr/bin/chromium: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    path = tmp_path_factory.mktemp("browser-template") / "data"
    return path, seed(path)


@pytest.fixture
def live(template: tuple[Path, Seeded], tmp_path: Path) -> Iterator[tuple[str, Seeded]]:
    runtime = copy_env(template[0], tmp_path / "data")
    try:
        with LiveServer(build_app(runtime)) as server:
            yield server.url, template[1]
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def snap(page: Any, shots: Path, name: str) -> None:
    """A full-page screenshot at desktop width, then at phone width."""
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(shots / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(shots / f"{name}-phone.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} scrolls sideways on a phone ({width}px)"
    page.set_viewport_size(DESKTOP)


def sign_in(page: Any, url: str, email: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def selected_id(page: Any) -> int:
    return int(page.get_attribute("li.item.selected", "data-id"))


def test_moderator_works_the_queue_with_the_keyboard(browser, live, shots):
    url, seeded = live
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/login")
    snap(page, shots, "login")
    sign_in(page, url, "mod@example.org")
    assert page.url.endswith("/queue")
    snap(page, shots, "queue")
    f = seeded.findings
    assert selected_id(page) == f["mira_v2"]
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert selected_id(page) == f["wren"]
    page.keyboard.press("c")
    page.keyboard.type("alias twren in the title; clear imitation")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator(f"#f-{f['wren']}").count() == 0
    assert selected_id(page) == f["okafor_wc"]  # the selection stays in place
    page.goto(url + "/queue?tab=resolved")
    assert page.locator(f"#f-{f['wren']}").count() == 1
    page.goto(url + "/audit")
    row = page.locator("table.audit tbody tr").first
    assert "confirm" in row.inner_text()
    assert "clear imitation" in row.inner_text()
    snap(page, shots, "audit")
    page.goto(url + f"/findings/{f['mira_v2']}")
    page.locator("img.sheet").first.scroll_into_view_if_needed()  # it loads lazily
    page.wait_for_function("document.querySelector('img.sheet').complete")
    assert page.evaluate("document.querySelector('img.sheet').naturalWidth") > 0
    snap(page, shots, "finding")
    for path in ("/queue", f"/findings/{f['xss']}"):
        page.goto(url + path)
        assert page.evaluate("typeof window.__xss") == "undefined", path
        assert XSS[0] in page.inner_text("body")  # shown as text, not run
    page.goto(url + "/queue")
    page.fill("input[name=q]", "watercolor")
    page.select_option("select[name=sort]", "newest")
    with page.expect_navigation():
        page.click("text=Filter")
    assert "q=watercolor" in page.url and "sort=newest" in page.url  # a view to share
    assert [selected_id(page)] == [f["okafor_wc"]]
    assert page.locator("li.item").count() == 1
    snap(page, shots, "queue-filtered")
    assert errors == []
    page.close()


def test_artist_adds_alias_and_image_and_dismisses_a_finding(browser, live, shots, tmp_path):
    url, seeded = live
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, url, "mira@example.org")
    assert page.url.endswith("/me")
    page.fill("input[name=alias][type=text]", "M. Okafor")
    page.click("text=Add alias")
    assert "M. Okafor" in page.inner_text("#aliases")
    image = tmp_path / "reference.png"
    image.write_bytes(evidence_sheet())
    page.set_input_files("input[name=image]", str(image))
    page.click("text=Upload image")
    thumb = page.locator(".thumbs img").first
    thumb.wait_for()
    page.wait_for_function("document.querySelector('.thumbs img').complete")  # loads after
    assert page.evaluate("document.querySelector('.thumbs img').naturalWidth") > 0
    finding = page.locator(f"#finding-{seeded.findings['okafor_wc']}")
    assert "needs review" in finding.inner_text()
    finding.locator("select[name=why]").select_option("licensed")
    finding.locator("input[name=note]").fill("commissioned in 2023")
    finding.locator("text=Dismiss").click()
    page.wait_for_load_state()
    assert "dismissed" in page.locator(f"#finding-{seeded.findings['okafor_wc']}").inner_text()
    alerts = page.locator("#alerts")
    assert alerts.locator("input[name=email]").input_value() == "mira@example.org"
    alerts.locator("select[name=channel]").select_option("digest")
    alerts.locator("text=Add alert").click()
    page.wait_for_load_state()
    assert "waiting for confirmation" in page.inner_text("#alerts")
    assert "weekly digest" in page.inner_text("#alerts")
    assert "mira@example.org" in page.inner_text("[role=status]")
    snap(page, shots, "portal")
    page.locator("#alerts").locator("text=Stop").click()
    page.wait_for_load_state()
    assert "No alerts yet." in page.inner_text("#alerts")
    # the evidence of her own finding, as the alert's "See the evidence" link opens it
    page.locator(f"#finding-{seeded.findings['mira_v2']}").locator("text=See the evidence").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/findings/{seeded.findings['mira_v2']}")
    page.locator("img.sheet").first.scroll_into_view_if_needed()  # it loads lazily
    page.wait_for_function("document.querySelector('img.sheet').complete")
    assert page.evaluate("document.querySelector('img.sheet').naturalWidth") > 0
    assert "A moderator will look at this finding" in page.inner_text("#status")
    snap(page, shots, "artist-finding")
    page.close()


def test_a_forgotten_password_is_reset_from_the_mailed_link(browser, template, tmp_path, shots):
    """Mira asks for a link, reads the mail a real SMTP server on loopback received, follows
    it, chooses a password and signs in with it; the admin's accounts page lists her."""
    from tests.alertsinks import smtp_server
    from tests.integration.test_web_abuse_more import mail_runtime

    with smtp_server() as (sink, port):
        runtime = mail_runtime(template[0], tmp_path / "data", port)
        try:
            with LiveServer(build_app(runtime)) as server:
                url = server.url
                page = browser.new_page(viewport=DESKTOP)
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(url + "/login")
                page.click("text=Forgot your password?")
                page.fill("input[name=email]", "mira@example.org")
                page.click("text=Mail me a link")
                assert "we sent it a link" in page.inner_text("[role=status]")
                snap(page, shots, "forgot")
                assert sink.arrived.wait(10)
                mail = sink.messages[0]
                assert mail["Subject"] == "stylewatch: reset your password"
                text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
                assert "works once" in text and "within the hour" in text
                [link] = [w for w in text.split() if "/login/reset/" in w]
                page.goto(url + link[link.index("/login/reset/") :])
                snap(page, shots, "reset")
                page.fill("input[name=password]", "a brand new passphrase")
                page.fill("input[name=again]", "a brand new passphrase")
                page.click("text=Change my password")
                assert "Your password is changed" in page.inner_text("[role=status]")
                page.fill("input[name=password]", "a brand new passphrase")
                page.click("button[type=submit]")
                page.wait_for_load_state()
                assert page.url.endswith("/me")
                page.close()
                admin = browser.new_page(viewport=DESKTOP)
                admin.set_default_timeout(TIMEOUT_MS)
                sign_in(admin, url, "admin@example.org")
                admin.click("text=Accounts")
                assert "mira@example.org" in admin.inner_text("table")
                snap(admin, shots, "accounts")
                admin.close()
        finally:
            runtime.close()
