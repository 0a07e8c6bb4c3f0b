"""Signed webhooks against a real aiohttp receiver on loopback (allowed explicitly)."""

from __future__ import annotations

import json

import aiohttp
import pytest

from alerts.dispatcher import DispatchSummary
from alerts.settings import WebhookSettings
from alerts.webhook import WebhookChannel
from monitor.build.alerts import create_webhook_session
from tests.alertsinks import WebhookReceiver, free_port, start_receiver
from tests.integration.alert_harness import Harness

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def h(store, engine, clock) -> Harness:
    return Harness(store, engine, clock)


@pytest.fixture
async def receiver(clock):
    receiver = WebhookReceiver(SECRET)
    receiver.now = lambda: int(clock.now.timestamp())
    server = await start_receiver(receiver)
    receiver.url = str(server.make_url("/hook"))  # type: ignore[attr-defined]
    yield receiver
    await server.close()


@pytest.fixture
async def session():
    async with create_webhook_session() as session:
        yield session


def endpoint(url: str, **extra) -> WebhookSettings:
    return WebhookSettings(url=url, secret=SECRET, allow_loopback=True, timeout_s=2, **extra)


def subscribe(h: Harness, url: str) -> int:
    [sub] = h.subscriptions.ensure_webhooks([(url, 0.0)])
    return sub.id


async def deliver(
    h: Harness, session: aiohttp.ClientSession, *endpoints: WebhookSettings, advance: float = 61
) -> DispatchSummary:
    h.clock.advance(advance)
    channel = WebhookChannel(list(endpoints), session, h.clock)
    return await h.dispatcher({"webhook": channel}).run_once()


async def test_standard_webhook_is_signed_once(h, receiver, session):
    subscribe(h, receiver.url)
    artist = h.store.add_artist("Mara Quellbrook")
    finding_id = h.find(artist.id, artist.name)
    assert (await deliver(h, session, endpoint(receiver.url))).sent == 1
    await deliver(h, session, endpoint(receiver.url))
    [request] = receiver.requests
    assert request["valid"]
    assert request["headers"]["webhook-id"].startswith("msg_alert-")
    body = json.loads(request["body"])
    assert body["type"] == "finding.created"
    [finding] = body["data"]["findings"]
    assert finding["finding_id"] == finding_id and finding["artist"] == "Mara Quellbrook"
    assert finding["finding_url"].endswith(f"/findings/{finding_id}")


async def test_slack_and_discord_shapes_escape_hub_text(h, receiver, session):
    subscribe(h, receiver.url)
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name, name="<!channel> & @everyone")
    await deliver(h, session, endpoint(receiver.url, format="slack"))
    slack = json.loads(receiver.requests[0]["body"])
    assert "&lt;!channel&gt; &amp; @everyone" in slack["text"] and "<!channel>" not in slack["text"]
    other = f"{receiver.url}?discord"
    subscribe(h, other)
    h.find(artist.id, artist.name, name="@everyone look")
    await deliver(
        h, session, endpoint(receiver.url, format="slack"), endpoint(other, format="discord")
    )
    body = json.loads(receiver.requests[-1]["body"])
    assert body["allowed_mentions"] == {"parse": []}
    assert "\\@everyone" in body["content"]


async def test_loopback_is_refused_unless_allowed(h, receiver, session):
    subscribe(h, receiver.url)
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name)
    strict = WebhookSettings(url=receiver.url, secret=SECRET, timeout_s=2)
    summary = await deliver(h, session, strict)
    assert summary.dead == 1 and receiver.requests == []
    [dead] = h.outbox.deliveries("dead")
    assert "loopback" in (dead.last_error or "")


async def test_gone_endpoint_is_disabled(h, receiver, session):
    sub_id = subscribe(h, receiver.url)
    receiver.status = 410
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name)
    assert (await deliver(h, session, endpoint(receiver.url))).dead == 1
    sub = h.subscriptions.get(sub_id)
    assert sub is not None and sub.disabled_at is not None and "410" in (sub.disabled_reason or "")
    h.find(artist.id, artist.name)
    assert len(h.outbox.deliveries()) == 1  # nothing more is enqueued for it


async def test_redirect_is_a_failure_and_not_followed(h, receiver, session):
    subscribe(h, receiver.url)
    receiver.status = 302
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name)
    summary = await deliver(h, session, endpoint(receiver.url))
    assert summary.retried == 1 and receiver.redirect_hits == 0
    assert "redirect" in (h.outbox.deliveries()[0].last_error or "")


async def test_dead_endpoint_retries_then_dead_letters(h, session):
    url = f"http://127.0.0.1:{free_port()}/hook"
    subscribe(h, url)
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name)
    for _ in range(3):
        await deliver(h, session, endpoint(url))  # 61 s: past the window and each backoff
    [dead] = h.outbox.deliveries("dead")
    assert dead.attempts == 3 and "gave up after 3 tries" in (dead.last_error or "")


async def test_server_error_then_success_keeps_the_webhook_id(h, receiver, session):
    subscribe(h, receiver.url)
    receiver.status = 500
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name)
    await deliver(h, session, endpoint(receiver.url))
    receiver.status = 200
    await deliver(h, session, endpoint(receiver.url), advance=11)
    assert len(receiver.requests) == 2 and len(receiver.unique_ids()) == 1
    assert all(r["valid"] for r in receiver.requests)
    assert h.outbox.deliveries()[0].status == "sent"


async def test_an_endless_answer_is_not_read_to_its_end(h, receiver, session):
    subscribe(h, receiver.url)
    receiver.endless_reply = True
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name)
    summary = await deliver(h, session, endpoint(receiver.url))
    assert summary.sent == 1, h.outbox.deliveries()[0].last_error
    assert receiver.reply_bytes_sent < 64 * 1024 * 1024  # read a little, then hung up
