"""Email alerts end to end against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from alerts.dispatcher import DeliveryPolicy
from detectors.results import Evidence
from monitor.runtime import Runtime
from monitor.settings import load_settings
from monitor.web.alert_routes import add_alert_routes
from storage.outbox import OutboxStore
from tests.alertsinks import free_port, smtp_server
from tests.integration.alert_harness import BASE_URL, WEB_SECRET, Harness, email_channel


@pytest.fixture
def h(store, engine, clock) -> Harness:
    return Harness(store, engine, clock)


@pytest.fixture
def mail():
    with smtp_server() as (sink, port):
        yield sink, port


def web_client(h: Harness, tmp_path) -> TestClient[web.Request, web.Application]:
    settings = load_settings(
        None, data_dir=tmp_path, web={"base_url": BASE_URL, "secret_key": WEB_SECRET}
    )
    runtime = Runtime(settings=settings, engine=h.engine, store=h.store, blobs=None)  # type: ignore[arg-type]
    app = web.Application()
    add_alert_routes(app, runtime)
    return TestClient(TestServer(app, host="127.0.0.1"))


async def test_confirmed_subscriber_gets_one_parsed_message(h, mail):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    sub = h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    finding_id = h.find(artist.id, artist.name)
    h.clock.advance(61)
    dispatcher = h.dispatcher({"email": email_channel(port, h.clock)})
    assert (await dispatcher.run_once()).sent == 1
    assert (await dispatcher.run_once()).sent == 0
    [msg] = sink.messages
    assert msg["To"] == "mara@example.org"
    assert msg["From"] == "alerts@sw.example.org"
    assert "Mara Quellbrook" in msg["Subject"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"] == f"<alert-{_first_outbox_id(h)}.stylewatch@sw.example.org>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith(f"<{BASE_URL}/unsubscribe/")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert f"{BASE_URL}/findings/{finding_id}" in text and f"/findings/{finding_id}" in html
    assert "by mara quellbrook" in text
    assert "<style" not in html and "style=" in html  # CSS inlined
    assert not list(msg.iter_attachments())
    assert h.outbox.deliveries()[0].status == "sent"
    assert sub.id


async def test_a_folder_upload_is_named_as_such_and_its_path_never_leaves(h, mail, tmp_path):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    path = tmp_path / "srv" / "watched" / "mara_style.safetensors"
    h.find(artist.id, artist.name, source="folder", url=path.as_uri(), name=path.name)
    h.clock.advance(61)
    assert (await h.dispatcher({"email": email_channel(port, h.clock)}).run_once()).sent == 1
    [msg] = sink.messages
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for body in (text, html):
        assert "file:" not in body and str(path.parent) not in body
        assert "mara_style.safetensors" in body and "in a watched folder" in body
        assert "on folder" not in body and "On the hub" not in body


async def test_the_strongest_evidence_leads_and_the_rest_is_counted(h, mail):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    weak = tuple(Evidence("tags", f"painterly {n}") for n in range(6))
    evidence = (*weak, Evidence("ss_tag_frequency", "by mara quellbrook"))
    h.find(artist.id, artist.name, url="https://civitai.com/models/1", evidence=evidence)
    h.clock.advance(61)
    assert (await h.dispatcher({"email": email_channel(port, h.clock)}).run_once()).sent == 1
    [msg] = sink.messages
    text = msg.get_body(("plain",)).get_content()
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("- ")]
    assert lines[0] == '- training captions: "by mara quellbrook"'
    assert lines[-1] == "- and 2 more on the evidence page"
    assert "on Civitai" in text and "On the hub: https://civitai.com/models/1" in text
    assert "and 2 more on the evidence page" in msg.get_body(("html",)).get_content()


def _first_outbox_id(h: Harness) -> int:
    return min(d.id for d in h.outbox.deliveries())


async def test_nothing_is_sent_before_confirmation(h, mail, tmp_path):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    sub = h.subscriptions.add("email", "mara@example.org", artist=artist.id)
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    dispatcher = h.dispatcher({"email": email_channel(port, h.clock)})
    await dispatcher.run_once()
    assert sink.messages == [] and h.outbox.deliveries() == []
    async with web_client(h, tmp_path) as client:
        link = URL(h.links.confirm(sub.id, sub.address))
        assert (await client.get("/subscriptions/confirm/forged")).status == 400
        assert (await client.get(link.path)).status == 200
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    await dispatcher.run_once()
    assert len(sink.messages) == 1


async def test_one_click_unsubscribe_stops_everything(h, mail, tmp_path):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    sub = h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    dispatcher = h.dispatcher({"email": email_channel(port, h.clock)})
    await dispatcher.run_once()
    unsubscribe = URL(sink.messages[0]["List-Unsubscribe"].strip("<>"))
    h.find(artist.id, artist.name)  # enqueued before the click: must not go out either
    async with web_client(h, tmp_path) as client:
        page = await client.get(unsubscribe.path)  # link scanners GET: nothing happens
        assert page.status == 200 and h.subscriptions.get(sub.id) is not None
        # RFC 8058: a bare POST, no cookie, no CSRF token; the signed URL is the authority.
        reply = await client.post(unsubscribe.path, data="List-Unsubscribe=One-Click")
        assert reply.status == 200
    assert h.subscriptions.get(sub.id) is None
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    await dispatcher.run_once()
    assert len(sink.messages) == 1


async def test_findings_within_the_window_go_out_as_one_message(h, mail):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    other = h.store.add_artist("Someone Else")
    dispatcher = h.dispatcher({"email": email_channel(port, h.clock)})
    ids = [h.find(artist.id, artist.name)]
    h.clock.advance(30)
    ids += [h.find(artist.id, artist.name), h.find(other.id, other.name)]
    await dispatcher.run_once()
    assert sink.messages == []  # the first finding is 30 s old: the window is 60 s
    h.clock.advance(31)
    await dispatcher.run_once()
    [msg] = sink.messages
    text = msg.get_body(("plain",)).get_content()
    assert "2 uploads may imitate Mara Quellbrook" in msg["Subject"]
    assert all(f"/findings/{i}" in text for i in ids[:2]) and "Someone Else" not in text


async def test_dead_smtp_server_retries_with_backoff_then_dead_letters(h):
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    dispatcher = h.dispatcher({"email": email_channel(free_port(), h.clock)})
    delays = []
    for _ in range(3):
        before = h.clock.now
        summary = await dispatcher.run_once()
        assert summary.sent == 0
        [row] = h.outbox.deliveries()
        delays.append((row.next_attempt_at - before).total_seconds())
        h.clock.advance(max(delays[-1], 0) + 1)
    assert delays[:2] == [10, 20]  # base 10 s, doubled, capped at 25
    [dead] = h.outbox.deliveries("dead")
    assert dead.attempts == 3
    assert "gave up after 3 tries" in (dead.last_error or "")
    assert "127.0.0.1" in (dead.last_error or "")


class CommitFailsOnce(OutboxStore):
    """The fault: the mail went out, then settling it in the database fails once."""

    failed = False

    def mark_sent(self, batch_key: str) -> int:
        if not self.failed:
            self.failed = True
            from detectors.errors import StorageError

            raise StorageError("mark_sent failed: simulated")
        return super().mark_sent(batch_key)


async def test_commit_failure_after_send_is_not_resent_while_leased(h, mail):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    channels = {"email": email_channel(port, h.clock)}
    await h.dispatcher(channels, outbox=CommitFailsOnce(h.engine, h.clock)).run_once()
    assert len(sink.messages) == 1 and h.outbox.deliveries()[0].status == "sending"
    await h.dispatcher(channels).run_once()  # a rerun while the lease holds: nothing
    assert len(sink.messages) == 1
    h.clock.advance(121)  # lease expired: at least once, with the same Message-ID
    await h.dispatcher(channels).run_once()
    assert len(sink.messages) == 2 and len(sink.unique_ids()) == 1
    assert h.outbox.deliveries()[0].status == "sent"


async def test_dispatcher_killed_mid_send_does_not_resend_before_lease_expiry(h, mail):
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    channels = {"email": email_channel(port, h.clock)}
    sink.release.clear()  # the server keeps the message but holds its 250 reply
    task = asyncio.create_task(h.dispatcher(channels).run_once())
    assert await asyncio.to_thread(sink.arrived.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sink.release.set()
    restarted = h.dispatcher(channels)
    assert (await restarted.run_once()).sent == 0
    assert len(sink.messages) == 1
    h.clock.advance(121)
    assert (await restarted.run_once()).sent == 1
    assert len(sink.unique_ids()) == 1


async def test_embedded_restart_resends_a_cut_off_send_at_once(h, mail):
    """The embedded default has one process: at start-up every lease left is a dead
    process's, so ``serve`` releases them instead of waiting out the lease."""
    sink, port = mail
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("email", "mara@example.org", artist=artist.id, confirmed=True)
    h.find(artist.id, artist.name)
    h.clock.advance(61)
    channels = {"email": email_channel(port, h.clock)}
    sink.release.clear()
    task = asyncio.create_task(h.dispatcher(channels).run_once())
    assert await asyncio.to_thread(sink.arrived.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sink.release.set()
    assert OutboxStore(h.engine, h.clock).release_leases() == 1
    assert (await h.dispatcher(channels).run_once()).sent == 1  # no clock advance needed
    assert len(sink.messages) == 2 and len(sink.unique_ids()) == 1
    assert OutboxStore(h.engine, h.clock).release_leases() == 0
    assert h.outbox.deliveries()[0].status == "sent"


async def test_policy_backoff_is_capped():
    policy = DeliveryPolicy(retry_base_s=10, retry_cap_s=25)
    assert [policy.retry_delay_s(n) for n in (1, 2, 3, 4)] == [10, 20, 25, 25]
