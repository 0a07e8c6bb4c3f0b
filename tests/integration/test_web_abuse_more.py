"""More of what a hostile user of the web UI tries (#20): mail failures and mail floods
through the portal's alerts."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import BaseTestServer, TestServer
from aiosmtpd.controller import Controller

from monitor.runtime import Runtime, open_runtime
from monitor.settings import load_settings
from monitor.web.app import ServiceStatus, create_app
from monitor.web.mail_limits import PER_ADDRESS, MailLimiter
from storage.subscriptions import SubscriptionStore
from storage.triage import FindingDecided, TriageStore
from storage.users import UserStore
from tests.alertsinks import MailSink, free_port, smtp_server
from tests.web_env import (  # noqa: F401
    CHEAP_PASSWORDS,
    WEB_SECRET,
    Seeded,
    Visitor,
    build_app,
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)

NOT_SENT = "We could not send the confirmation mail; try again in a few minutes."


class RefusingSink(MailSink):
    """A mail server that refuses every message after the DATA command."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "451 4.3.0 try again later"


@contextmanager
def refusing_smtp() -> Iterator[int]:
    port = free_port()
    controller = Controller(RefusingSink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def mail_runtime(template: Path, target: Path, smtp_port: int) -> Runtime:
    shutil.copytree(template, target)
    email = {
        "enabled": True,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "starttls": False,
        "timeout_s": 5,
    }
    settings = load_settings(
        None, data_dir=target, web={"secret_key": WEB_SECRET}, alerts={"email": email}
    )
    return open_runtime(settings)


Portal = Callable[[int], Awaitable[tuple[Visitor, Runtime]]]


@pytest.fixture
async def portal(web_template: tuple[Path, Seeded], tmp_path: Path) -> AsyncIterator[Portal]:
    """Signs Mira in to a portal whose mail goes to the given SMTP port."""
    opened: list[tuple[TestServer, Visitor, Runtime]] = []

    async def make(smtp_port: int) -> tuple[Visitor, Runtime]:
        runtime = mail_runtime(web_template[0], tmp_path / f"data{len(opened)}", smtp_port)
        server = TestServer(build_app(runtime))
        await server.start_server()
        visitor = Visitor(server)
        opened.append((server, visitor, runtime))
        assert (await visitor.login("mira@example.org")).status == 303
        await visitor.get("/me")
        return visitor, runtime

    yield make
    for server, visitor, runtime in opened:
        await visitor.close()
        await server.close()
        runtime.close()


def _addresses(runtime: Runtime) -> list[str]:
    return [r.address for r in SubscriptionStore(runtime.engine).list_all() if r.address]


@pytest.mark.parametrize("server", ["refusing", "closed port"])
async def test_a_mail_failure_on_subscribing_is_one_sentence_and_a_retry_adds_no_row(
    portal: Portal, server: str
):
    with refusing_smtp() as refusing:
        visitor, runtime = await portal(refusing if server == "refusing" else free_port())
        form = {"email": "fan@example.net", "channel": "email", "min_score": "0"}
        first = await visitor.post("/me/alerts", form)
        again = await visitor.post("/me/alerts", form)
    for page in (first, again):
        assert page.status == 503
        assert NOT_SENT in page.text and "Traceback" not in page.text
    assert _addresses(runtime).count("fan@example.net") == 1


async def test_confirmation_mails_are_limited_per_address_and_the_retry_is_plain(
    portal: Portal,
):
    with smtp_server() as (sink, port):
        visitor, runtime = await portal(port)
        form = {"email": "victim@example.net", "channel": "email", "min_score": "0"}
        pages = [await visitor.post("/me/alerts", form) for _ in range(PER_ADDRESS + 2)]
    assert [p.status for p in pages] == [303] * PER_ADDRESS + [429, 429]
    assert "try again in an hour" in pages[-1].text
    assert len(sink.messages) == PER_ADDRESS
    assert _addresses(runtime).count("victim@example.net") == 1


async def test_confirmation_mails_are_limited_overall(portal: Portal):
    with smtp_server() as (sink, port):
        visitor, _ = await portal(port)
        statuses = []
        for n in range(34):
            form = {"email": f"stranger{n}@example.net", "channel": "email", "min_score": "0"}
            statuses.append((await visitor.post("/me/alerts", form)).status)
    assert statuses.count(303) == 30 and set(statuses[30:]) == {429}
    assert len(sink.messages) == 30


def test_the_limiter_forgets_old_mails_and_stays_bounded():
    now = [0.0]
    limiter = MailLimiter(per_address=1, overall=1000, max_addresses=50, clock=lambda: now[0])
    assert limiter.refusal("A@example.net") is None
    assert limiter.refusal("a@example.net ") is not None
    now[0] += 3601
    assert limiter.refusal("a@example.net") is None
    for n in range(200):
        assert limiter.refusal(f"x{n}@example.net") is None
    assert len(limiter._by_address) <= 50  # the bound itself is what is tested


DB_URL = "postgresql+psycopg://stylewatch:hunter2-db-pass@db.internal:5432/stylewatch"


@pytest.fixture
async def status_server(web_runtime: Runtime) -> AsyncIterator[BaseTestServer]:
    status = ServiceStatus(
        version="test",
        database=DB_URL,
        sources=("civitai",),
        store=web_runtime.store,
        ready=lambda: True,
        runtime=web_runtime,
    )
    async with TestServer(create_app(status, passwords=CHEAP_PASSWORDS)) as server:
        yield server


async def test_the_public_home_page_shows_no_database_url(status_server: BaseTestServer):
    anonymous, artist, moderator = (Visitor(status_server) for _ in range(3))
    try:
        await artist.login("mira@example.org")
        await moderator.login("mod@example.org")
        pages = [await v.get("/") for v in (anonymous, artist, moderator)]
    finally:
        for v in (anonymous, artist, moderator):
            await v.close()
    assert [p.status for p in pages] == [200, 200, 200]
    for page in pages:
        assert "hunter2" not in page.text
    for page in pages[:2]:
        assert "db.internal" not in page.text and "postgresql" not in page.text
    assert "db.internal" in pages[2].text and "***" in pages[2].text


async def test_an_artist_cannot_dismiss_a_finding_a_moderator_confirmed(
    web_runtime: Runtime, seeded: Seeded, visitors: Any
):
    finding = seeded.findings["mira_v2"]
    users = UserStore(web_runtime.engine)
    mod = next(u for u in users.list_users() if u.email == "mod@example.org")
    triage = TriageStore(web_runtime.engine)
    triage.decide(finding, mod.id, "confirm", "moderator's call")
    before = [e.action for e in triage.events(finding)]
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    page = await mira.post(f"/me/findings/{finding}/dismiss", {"why": "licensed"})
    assert page.status == 409
    assert "A moderator has already decided this finding" in page.text
    assert "Traceback" not in page.text
    assert [e.action for e in triage.events(finding)] == before
    artist = seeded.artists["Mira Okafor"]
    with pytest.raises(FindingDecided):
        triage.artist_dismiss(finding, artist, mira_id(users), "licensed")


def mira_id(users: UserStore) -> int:
    return next(u.id for u in users.list_users() if u.email == "mira@example.org")


async def test_an_artist_still_dismisses_an_undecided_finding(
    web_runtime: Runtime, seeded: Seeded, visitors: Any
):
    finding = seeded.findings["mira_v2"]
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    page = await mira.post(f"/me/findings/{finding}/dismiss", {"why": "licensed"})
    assert page.status == 303
    history = TriageStore(web_runtime.engine).events(finding)
    assert history[0].action == "artist_dismiss"
