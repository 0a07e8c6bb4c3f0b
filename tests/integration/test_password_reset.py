"""A forgotten password, reset by a link mailed to a real SMTP server on loopback: the page
tells no one which addresses have accounts, the link works once and within the hour, and
the new password ends every other session."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import BaseTestServer, TestServer
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from alerts.links import RESET_MAX_AGE_S, RESET_SALT
from monitor.runtime import Runtime, open_runtime
from monitor.secret_key import web_secret_key
from monitor.settings import load_settings
from monitor.web.mail_limits import PER_ADDRESS
from monitor.web.password_reset import fingerprint
from storage.users import UserStore
from tests.alertsinks import MailSink, smtp_server
from tests.integration.test_web_abuse_more import mail_runtime
from tests.web_env import (  # noqa: F401
    PASSWORD,
    WEB_SECRET,
    Seeded,
    Visitor,
    build_app,
    web_template,
)

NEW_PASSWORD = "a brand new passphrase"


class World:
    def __init__(self, runtime: Runtime, server: BaseTestServer, sink: MailSink | None) -> None:
        self.runtime, self.server, self.sink = runtime, server, sink
        self.visitors: list[Visitor] = []

    def visitor(self) -> Visitor:
        self.visitors.append(Visitor(self.server))
        return self.visitors[-1]

    async def mails(self, count: int) -> list[str]:
        """The reset links mailed so far, once ``count`` mails have arrived."""
        assert self.sink is not None
        for _ in range(200):
            if len(self.sink.messages) >= count:
                break
            await asyncio.sleep(0.02)
        links = []
        for message in self.sink.messages:
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            links.extend(re.findall(r"http\S+/login/reset/\S+", text))
        return links


@pytest.fixture
async def world(web_template: tuple[Path, Seeded], tmp_path: Path) -> AsyncIterator[World]:
    with smtp_server() as (sink, port):
        runtime = mail_runtime(web_template[0], tmp_path / "data", port)
        async with TestServer(build_app(runtime)) as server:
            world = World(runtime, server, sink)
            yield world
            for visitor in world.visitors:
                await visitor.close()
        runtime.close()


async def ask(visitor: Visitor, email: str) -> str:
    await visitor.get("/login/forgot")
    page = await visitor.post("/login/forgot", {"email": email})
    assert page.status == 200
    return page.text


async def test_a_reset_link_changes_the_password_once_and_signs_out_everywhere(world: World):
    signed_in = world.visitor()
    assert (await signed_in.login("mira@example.org")).status == 303
    assert (await signed_in.get("/me")).status == 200

    someone = world.visitor()
    answer = await ask(someone, "mira@example.org")
    assert "If an account uses mira@example.org, we sent it a link" in answer
    [link] = await world.mails(1)
    assert world.sink is not None and world.sink.messages[0]["To"] == "mira@example.org"
    path = "/login/reset/" + link.rsplit("/login/reset/", 1)[1]
    page = await someone.get(path)
    assert page.status == 200 and "Choose a new password" in page.text
    mismatch = await someone.post(path, {"password": NEW_PASSWORD, "again": NEW_PASSWORD + "x"})
    assert mismatch.status == 400 and "not the same" in mismatch.text
    short = await someone.post(path, {"password": "short", "again": "short"})
    assert short.status == 400 and "at least 10 characters" in short.text
    done = await someone.post(path, {"password": NEW_PASSWORD, "again": NEW_PASSWORD})
    assert done.status == 200 and "Your password is changed" in done.text

    after = await signed_in.get("/me")  # that session ended with the old password
    assert after.status == 303 and after.location == "/login?next=/me"
    again = await someone.get(path)  # used: the password it replaced is gone
    assert again.status == 400 and "expired or was already used" in again.text
    assert (await world.visitor().login("mira@example.org")).status != 303  # old password
    assert (await world.visitor().login("mira@example.org", NEW_PASSWORD)).status == 303


async def test_the_page_says_the_same_for_an_address_without_an_account(world: World):
    visitor = world.visitor()
    answer = await ask(visitor, "nobody@example.org")
    assert "If an account uses nobody@example.org, we sent it a link" in answer
    await asyncio.sleep(0.3)
    assert world.sink is not None and world.sink.messages == []


async def test_reset_mails_to_one_address_are_limited_silently(world: World):
    visitor = world.visitor()
    for _ in range(PER_ADDRESS + 2):
        assert "we sent it a link" in await ask(visitor, "mira@example.org")
    assert len(await world.mails(PER_ADDRESS)) == PER_ADDRESS
    await asyncio.sleep(0.3)
    assert world.sink is not None and len(world.sink.messages) == PER_ADDRESS


class _HourAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - RESET_MAX_AGE_S - 5


async def test_forged_and_expired_links_open_nothing(world: World):
    visitor = world.visitor()
    for token in ("garbage", "x" * 5000):
        page = await visitor.get(f"/login/reset/{token}")
        assert page.status == 400 and "expired or was already used" in page.text
    users = UserStore(world.runtime.engine)
    found = users.credentials("mira@example.org")
    assert found is not None
    value = [found[0].id, fingerprint(found[1])]
    key = web_secret_key(world.runtime.settings)
    fresh = URLSafeTimedSerializer(key, salt=RESET_SALT).dumps(value)
    old = URLSafeTimedSerializer(key, salt=RESET_SALT, signer=_HourAgo).dumps(value)
    other = URLSafeTimedSerializer(key, salt="stylewatch.subscription.confirm")
    assert (await visitor.get(f"/login/reset/{fresh}")).status == 200  # the control
    for token in (old, other.dumps(value)):
        form = {"password": NEW_PASSWORD, "again": NEW_PASSWORD}
        page = await visitor.post(f"/login/reset/{token}", form)
        assert page.status == 400 and "expired or was already used" in page.text
    assert users.credentials("mira@example.org") == found  # nothing changed


async def test_without_email_the_page_says_whom_to_ask(web_template, tmp_path: Path):
    shutil.copytree(web_template[0], tmp_path / "data")
    runtime = open_runtime(
        load_settings(None, data_dir=tmp_path / "data", web={"secret_key": WEB_SECRET})
    )
    async with TestServer(build_app(runtime)) as server:
        visitor = Visitor(server)
        login = await visitor.get("/login")
        assert 'href="/login/forgot"' in login.text
        page = await ask_status(visitor, "mira@example.org")
        assert page[0] == 503 and "stylewatch user password" in page[1]
        await visitor.close()
    runtime.close()


async def ask_status(visitor: Visitor, email: str) -> tuple[int, str]:
    await visitor.get("/login/forgot")
    page = await visitor.post("/login/forgot", {"email": email})
    return page.status, page.text


async def test_an_admin_mails_a_reset_link_and_removes_an_account(world: World):
    mira = world.visitor()
    assert (await mira.login("mira@example.org")).status == 303
    assert (await mira.get("/admin/users")).status == 403  # admins only

    admin = world.visitor()
    assert (await admin.login("admin@example.org")).status == 303
    page = await admin.get("/admin/users")
    assert page.status == 200 and "mira@example.org" in page.text and "Mira Okafor" in page.text
    users = UserStore(world.runtime.engine)
    record = users.credentials("mira@example.org")
    assert record is not None
    mira_id = record[0].id

    sent = await admin.post(f"/admin/users/{mira_id}/reset", {})
    assert sent.status == 303 and "reset+link+went+to+mira" in (sent.location or "")
    [link] = await world.mails(1)
    assert (await world.visitor().get(link[link.index("/login/reset/") :])).status == 200

    wrong = await admin.post(f"/admin/users/{mira_id}/remove", {"confirm": "someone@else"})
    assert wrong.status == 303 and users.credentials("mira@example.org") is not None
    mine = users.credentials("admin@example.org")
    assert mine is not None
    myself = await admin.post(f"/admin/users/{mine[0].id}/remove", {"confirm": "admin@example.org"})
    assert "cannot+remove+your+own" in (myself.location or "")
    gone = await admin.post(f"/admin/users/{mira_id}/remove", {"confirm": "Mira@Example.org "})
    assert gone.status == 303 and "Removed+mira@example.org+and+its+1+API+token" in (
        gone.location or ""
    )
    assert users.credentials("mira@example.org") is None
    assert (await mira.get("/me")).status == 303  # her session ended with the account
    assert (await admin.get("/admin/users/999/remove")).status == 405
    missing = await admin.post("/admin/users/999999/remove", {"confirm": "x"})
    assert missing.status == 404


async def test_an_admin_removes_an_artist_after_reading_what_goes(world: World):
    admin = world.visitor()
    assert (await admin.login("admin@example.org")).status == 303
    wren = next(a for a in world.runtime.store.list_artists() if a.name == "Tomasz Wren")
    listed = await admin.get("/admin/users")
    assert f'href="/admin/artists/{wren.id}/remove"' in listed.text
    page = await admin.get(f"/admin/artists/{wren.id}/remove")
    assert page.status == 200
    assert "Removing Tomasz Wren removes 1 finding, 0 subscriptions" in page.text
    refused = await admin.post(f"/admin/artists/{wren.id}/remove", {"confirm": "tomasz wren"})
    assert "Not+removed" in (refused.location or "")
    assert any(a.name == "Tomasz Wren" for a in world.runtime.store.list_artists())
    gone = await admin.post(f"/admin/artists/{wren.id}/remove", {"confirm": "Tomasz Wren"})
    assert gone.status == 303 and "Removed+Tomasz+Wren+with+1+finding" in (gone.location or "")
    assert all(a.name != "Tomasz Wren" for a in world.runtime.store.list_artists())
    assert (await admin.get(f"/admin/artists/{wren.id}/remove")).status == 404
    mod = world.visitor()
    assert (await mod.login("mod@example.org")).status == 303
    assert (await mod.get(f"/admin/artists/{wren.id}/remove")).status == 403
