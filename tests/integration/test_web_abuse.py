"""What a hostile user of the web UI tries (#20): redirects off-site, odd ids, replayed cookies."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from aiohttp.test_utils import TestServer

from monitor.web.app import ServiceStatus, create_app
from monitor.web.executors import PASSWORD_CHECKS, PASSWORD_THREADS
from monitor.web.login_limits import MAX_ACCOUNT_FAILURES, MAX_ADDRESS_FAILURES
from storage.users import UserStore
from tests.web_env import (  # noqa: F401
    CHEAP_PASSWORDS,
    MODERATOR_TOKEN,
    PASSWORD,
    Page,
    Visitor,
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)

OFF_SITE = [
    "//evil.example/x",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\\evil.example",
    "\\/evil.example",
    "/ /evil.example",
    "https://evil.example/",
    "/\x00/evil.example",
    "/\u3000/evil.example",
]


def followed_by_a_browser(location: str) -> str:
    """What a browser makes of a Location: tabs and line breaks dropped, \\ read as /."""
    return location.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")


def stays_on_site(location: str) -> bool:
    seen = followed_by_a_browser(location).lstrip(" \x00")
    return seen.startswith("/") and not seen.startswith("//")


@pytest.mark.parametrize("target", OFF_SITE)
async def test_sign_in_never_redirects_off_site(visitors, target):
    visitor = await visitors()
    await visitor.get("/login")
    data = {"email": "mod@example.org", "password": PASSWORD, "next": target}
    page = await visitor.post("/login", data)
    assert page.status == 303 and page.location == "/queue", page.location
    # signed in, /login?next=… redirects at once: the same check
    page = await visitor.get("/login", params={"next": target})
    assert page.status == 303 and stays_on_site(page.location), page.location


async def test_a_local_next_is_kept(visitors, seeded):
    visitor = await visitors()
    await visitor.get("/login")
    target = f"/findings/{seeded.findings['wren']}?from=mail"
    data = {"email": "mod@example.org", "password": PASSWORD, "next": target}
    assert (await visitor.post("/login", data)).location == target


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\\evil.example"])
async def test_a_decision_form_never_redirects_off_site(visitors, seeded, target):
    mod = await visitors("mod@example.org")
    fid = seeded.findings["wren"]
    await mod.get(f"/findings/{fid}")
    form = {"decision": "escalate", "reason": "look again", "next": target}
    page = await mod.post(f"/findings/{fid}/decide", form)
    assert page.status == 303 and page.location == "/queue", page.location


@pytest.mark.parametrize(
    "path",
    [
        "/findings/99999999999999999999",
        "/findings/%D9%A3",  # ARABIC-INDIC DIGIT THREE once opened finding 3
        "/findings/%EF%BC%93",  # FULLWIDTH DIGIT THREE
        "/findings/99999999999999999999/report.json",
        "/api/v1/findings/99999999999999999999",
        "/api/v1/uploads/%D9%A3",
    ],
)
async def test_odd_ids_are_not_found_never_a_500(visitors, path):
    mod = await visitors("mod@example.org")
    page = await mod.get(path, headers={"Authorization": f"Bearer {MODERATOR_TOKEN}"})
    assert page.status == 404, (path, page.status, page.text[:200])


@pytest.mark.parametrize("offset", ["99999999999999999999", "\u0663", "-1", "1e3", " 2"])
async def test_odd_offsets_are_a_clear_400(visitors, offset):
    api = await visitors()
    headers = {"Authorization": f"Bearer {MODERATOR_TOKEN}"}
    page = await api.get("/api/v1/findings", params={"offset": offset}, headers=headers)
    assert page.status == 400 and "whole numbers" in page.text, page.text
    far = {"offset": "999999999999999999"}  # the largest accepted: an empty page
    page = await api.get("/api/v1/findings", params=far, headers=headers)
    assert page.status == 200 and json.loads(page.text)["items"] == []


async def test_a_cookie_saved_before_sign_out_opens_nothing(visitors, web_server):
    mod = await visitors("mod@example.org")
    assert (await mod.get("/queue")).status == 200
    saved = {c.key: c.value for c in mod.http.cookie_jar}
    assert (await mod.post("/logout")).location == "/login"
    replay = await visitors()
    replay.http.cookie_jar.update_cookies(saved, web_server.make_url("/"))
    page = await replay.get("/queue")
    assert page.status == 303 and page.location.startswith("/login"), page.status
    # a sign-out elsewhere leaves this browser's own session alone
    one, other = await visitors("mod@example.org"), await visitors("mod@example.org")
    await other.get("/queue")
    await other.post("/logout")
    assert (await one.get("/queue")).status == 200


async def test_a_new_password_ends_every_session_of_the_user(visitors, web_runtime):
    mod = await visitors("mod@example.org")
    assert (await mod.get("/queue")).status == 200
    users = UserStore(web_runtime.engine)
    user = next(u for u in users.list_users() if u.email == "mod@example.org")
    users.set_password_hash(user.id, "argon2-not-a-real-hash")
    assert (await mod.get("/queue")).status == 303


async def test_hsts_only_behind_https(web_runtime, visitors):
    from dataclasses import replace

    from aiohttp.test_utils import TestServer

    from tests.web_env import Visitor, build_app

    plain = await visitors()
    assert "Strict-Transport-Security" not in (await plain.get("/login")).headers
    web = web_runtime.settings.web.model_copy(update={"base_url": "https://sw.example"})
    settings = web_runtime.settings.model_copy(update={"web": web})
    async with TestServer(build_app(replace(web_runtime, settings=settings))) as server:
        visitor = Visitor(server)
        page = await visitor.get("/login")
        missing = await visitor.get("/no-such-page")
        await visitor.close()
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert missing.headers["Strict-Transport-Security"] == "max-age=31536000"


# -- alias hijack -------------------------------------------------------------------------

HIJACKS = [
    "Tomasz Wren",  # another artist's full name
    "tomasz_wren",
    "T0masz Wren",  # leetspeak
    "T\u043emasz Wr\u0435n",  # Cyrillic о and е
    "TomaszWren",
    "Tomasz Wren style",  # her full name inside it
    "twren",  # her alias
    "TWREN",
    "Okafor-wren",  # (for wren) Mira's distinctive surname among its words
]


@pytest.mark.parametrize("alias", HIJACKS[:8])
async def test_an_artist_cannot_take_another_artists_name_or_alias(visitors, seeded, alias):
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    page = await mira.post("/me/aliases", {"alias": alias})
    assert page.status == 400, (alias, page.status)
    assert "reads as another artist" in page.text
    api = await visitors()
    headers = {"Authorization": f"Bearer {MODERATOR_TOKEN}"}
    artist = json.loads(
        (await api.get(f"/api/v1/artists/{seeded.artists['Mira Okafor']}", headers=headers)).text
    )
    assert artist["aliases"] == ["mira_ok", "Okafor"]


async def test_a_surname_another_artist_is_known_by_is_refused(visitors):
    wren = await visitors("wren@example.org")
    await wren.get("/me")
    page = await wren.post("/me/aliases", {"alias": HIJACKS[8]})
    assert page.status == 400 and "reads as another artist" in page.text


@pytest.mark.parametrize("alias", ["a", "lora", "style", "LoRA style", "sdxl lora v2", "xyz1"])
async def test_generic_or_short_aliases_are_refused_in_one_line(visitors, alias):
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    page = await mira.post("/me/aliases", {"alias": alias})
    assert page.status == 400, alias
    assert "Alias not added: it needs at least" in page.text or "too common" in page.text


async def test_a_distinctive_alias_of_her_own_is_still_added(visitors):
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    for alias in ("M. Okafor", "okaforpaints", "mira_ok"):  # the last she already holds
        assert (await mira.post("/me/aliases", {"alias": alias})).status == 303, alias


def test_operators_cannot_register_a_confusable_artist_either(web_runtime):
    from detectors.errors import InputError

    store = web_runtime.store
    for name, aliases in (("T\u043emasz Wr\u0435n", []), ("Ada Quill", ["TWREN"])):
        with pytest.raises(InputError, match="reads as another artist"):
            store.add_artist(name, aliases)
    store.add_artist("Ada Okafor")  # two people may share a surname
    with pytest.raises(InputError, match="reads as another artist"):
        store.add_alias("Tomasz Wren", "mira ok")


# -- the image gate -----------------------------------------------------------------------


def _image_form(csrf: str, data: bytes) -> object:
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("image", data, filename="reference.webp", content_type="image/webp")
    return form


def _encoded(img: object, fmt: str, **kw: object) -> bytes:
    import io

    out = io.BytesIO()
    img.save(out, fmt, **kw)  # type: ignore[attr-defined]  # a PIL image
    return out.getvalue()


async def test_an_animated_reference_image_is_refused_in_one_line(visitors, web_runtime, seeded):
    from PIL import Image

    from storage.web_queries import WebQueries

    frames = [Image.new("RGB", (64, 64), (30 * i, 80, 120)) for i in range(6)]
    data = _encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=40)
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    page = await mira.post("/me/images", _image_form(mira.csrf, data), csrf=False)
    assert page.status == 400 and "Image refused: animated" in page.text
    queries = WebQueries(web_runtime.engine)
    assert queries.reference_images(seeded.artists["Mira Okafor"]) == []


async def test_the_thumbnail_is_made_at_upload_and_served_without_decoding_again(
    visitors, web_runtime, seeded
):
    from PIL import Image

    from storage.web_queries import WebQueries

    data = _encoded(Image.new("RGB", (2400, 1200), "teal"), "PNG")
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    page = await mira.post("/me/images", _image_form(mira.csrf, data), csrf=False)
    assert page.status == 303, page.text[:300]
    sha = web_runtime.blobs.put(data)  # content-addressed: the key it was stored under
    kept = WebQueries(web_runtime.engine).thumbnail_of(sha)
    assert kept is not None and kept != sha
    async with mira.http.get(mira.server.make_url(f"/blobs/{sha}/thumb")) as resp:
        assert resp.status == 200 and resp.content_type == "image/png"
        assert await resp.read() == web_runtime.blobs.read(kept)


# -- login flood --------------------------------------------------------------------------


class SlowPasswords:
    """A hasher at the seam that takes ``delay_s`` per check and records how many ran, how
    many at once and on which threads."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self.running = self.most = self.calls = 0
        self.threads: set[str] = set()

    def hash(self, password: str) -> str:
        return CHEAP_PASSWORDS.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        time.sleep(self._delay_s)
        with self._lock:
            self.running -= 1
        return CHEAP_PASSWORDS.verify(stored_hash, password)


def app_with(runtime, passwords: SlowPasswords):
    status = ServiceStatus(
        version="test",
        database="sqlite:///test.db",
        sources=(),
        store=runtime.store,
        ready=lambda: True,
        runtime=runtime,
    )
    return create_app(status, passwords=passwords)  # type: ignore[arg-type]  # the seam


async def wrong(visitor: Visitor, email: str) -> Page:
    return await visitor.post("/login", {"email": email, "password": "wrong password"})


async def test_a_login_flood_neither_hashes_unbounded_nor_slows_a_signed_in_page(web_runtime):
    passwords = SlowPasswords()
    async with TestServer(app_with(web_runtime, passwords)) as server:
        mira, flood = Visitor(server), Visitor(server, "127.0.0.2")
        assert (await mira.login("mira@example.org")).status == 303
        await flood.get("/login")
        started = time.monotonic()
        flooding = asyncio.gather(*(wrong(flood, f"u{n}@example.org") for n in range(64)))
        await asyncio.sleep(0.05)
        before = time.monotonic()
        page = await mira.get("/me")
        page_s = time.monotonic() - before
        answers = await flooding
        flood_s = time.monotonic() - started
        await mira.close()
        await flood.close()
    statuses = [a.status for a in answers]
    assert statuses.count(401) == MAX_ADDRESS_FAILURES, statuses
    assert statuses.count(429) == 64 - MAX_ADDRESS_FAILURES, statuses
    # mira's sign-in and the flood's first 20: the excess was answered without hashing
    assert passwords.calls == 1 + MAX_ADDRESS_FAILURES
    assert passwords.most <= PASSWORD_THREADS
    assert all(t.startswith("passwords") for t in passwords.threads), passwords.threads
    assert page.status == 200 and page_s < flood_s / 2, (page_s, flood_s)


async def test_one_address_trying_many_emails_is_throttled_fast_with_a_plain_page(web_runtime):
    passwords = SlowPasswords(delay_s=0)
    async with TestServer(app_with(web_runtime, passwords)) as server:
        guesser, other = Visitor(server, "127.0.0.2"), Visitor(server, "127.0.0.3")
        await guesser.get("/login")
        answers = [await wrong(guesser, f"user{n}@example.org") for n in range(30)]
        right = await guesser.login("mira@example.org")
        elsewhere = await other.login("mira@example.org")
        await guesser.close()
        await other.close()
    assert [a.status for a in answers] == [401] * 20 + [429] * 10
    assert passwords.calls == MAX_ADDRESS_FAILURES + 1  # 20 guesses and `elsewhere`
    late = answers[-1]
    assert 0 < int(late.headers["Retry-After"]) <= 300
    assert "Too many failed sign-ins. Try again in 5 minutes." in late.text
    assert right.status == 429  # even the right password, from this address, for now
    assert elsewhere.status == 303


async def test_junk_emails_do_not_lift_a_real_accounts_lockout(web_runtime):
    passwords = SlowPasswords(delay_s=0)
    async with TestServer(app_with(web_runtime, passwords)) as server:
        attacker, junk, owner = (Visitor(server, f"127.0.0.{n}") for n in (2, 3, 4))
        for visitor in (attacker, junk, owner):
            await visitor.get("/login")
        locking = [await wrong(attacker, "mod@example.org") for _ in range(11)]
        # today's main forgot the oldest half of its 10,000 (address, email) keys when full
        for n in range(10_001):
            if (await wrong(junk, f"junk{n}@example.org")).status == 429:
                break
        locked = await owner.login("mod@example.org")
        mira = await owner.login("mira@example.org")
        for visitor in (attacker, junk, owner):
            await visitor.close()
    assert [p.status for p in locking] == [401] * MAX_ACCOUNT_FAILURES + [429]
    assert n == MAX_ADDRESS_FAILURES
    assert locked.status == 429 and int(locked.headers["Retry-After"]) > 0
    assert mira.status == 303  # the lockout is the account's, not the address's


async def test_past_its_backlog_the_password_pool_answers_busy_at_once(web_runtime):
    passwords = SlowPasswords(delay_s=0.3)
    app = app_with(web_runtime, passwords)
    app[PASSWORD_CHECKS].limit = 4
    async with TestServer(app) as server:
        crowd = [Visitor(server, f"127.0.1.{n}") for n in range(1, 17)]
        for visitor in crowd:
            await visitor.get("/login")
        answers = await asyncio.gather(
            *(wrong(v, f"u{i}@example.org") for i, v in enumerate(crowd))
        )
        for visitor in crowd:
            await visitor.close()
    statuses = [a.status for a in answers]
    assert statuses.count(401) == passwords.calls >= 4, statuses
    busy = [a for a in answers if a.status == 503]
    assert busy and all(a.headers["Retry-After"] == "5" for a in busy), statuses
    assert "Sign-in is busy right now" in busy[0].text
