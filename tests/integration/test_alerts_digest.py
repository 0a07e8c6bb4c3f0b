"""The weekly digest: content, and sending once per recipient and ISO week."""

from __future__ import annotations

import pytest

from alerts.digest import DigestBuilder, enqueue_digests
from alerts.render import MessageRenderer
from storage.digest_data import DigestData
from tests.alertsinks import smtp_server
from tests.integration.alert_harness import BASE_URL, Harness, email_channel


@pytest.fixture
def h(store, engine, clock) -> Harness:
    return Harness(store, engine, clock)


def builder(h: Harness) -> DigestBuilder:
    return DigestBuilder(DigestData(h.engine), MessageRenderer(BASE_URL), h.links)


def test_artist_digest_has_the_weeks_findings_and_earlier_states(h):
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name, score=0.6)
    h.clock.advance(8 * 86400)
    new_id = h.find(artist.id, artist.name, score=0.95, name="quellbrook_v2")
    message = builder(h).artist(artist.id, h.clock.now)
    assert message is not None
    assert "Mara Quellbrook" in message.subject and "2024-W19" in message.subject
    assert "quellbrook_v2" in message.text and f"{BASE_URL}/findings/{new_id}" in message.text
    assert "needs_review: 1" in message.text  # the earlier finding's state
    assert "quellbrook_v2" in message.html
    assert builder(h).artist(h.store.add_artist("Nobody").id, h.clock.now) is None


def test_moderators_digest_has_queue_figures(h):
    artist = h.store.add_artist("Mara Quellbrook")
    h.find(artist.id, artist.name)
    h.find(artist.id, artist.name)
    message = builder(h).moderators(h.clock.now)
    assert "2 new findings this week" in message.text
    assert "needs_review: 2" in message.text


async def test_digest_is_sent_once_per_recipient_and_week(h):
    artist = h.store.add_artist("Mara Quellbrook")
    h.subscriptions.add("digest", "mara@example.org", artist=artist.id, confirmed=True)
    h.subscriptions.add("digest", "mods@example.org", team="moderators", confirmed=True)
    h.subscriptions.add("digest", "unconfirmed@example.org", artist=artist.id)
    h.find(artist.id, artist.name)
    with smtp_server() as (sink, port):
        dispatcher = h.dispatcher({"digest": email_channel(port, h.clock)})
        assert enqueue_digests(builder(h), h.subscriptions, h.outbox, h.clock.now) == 2
        assert enqueue_digests(builder(h), h.subscriptions, h.outbox, h.clock.now) == 0
        await dispatcher.run_once()
        assert sorted(m["To"] for m in sink.messages) == ["mara@example.org", "mods@example.org"]
        assert all(m["List-Unsubscribe-Post"] for m in sink.messages)
        h.clock.advance(3600)  # later the same week: nothing more
        assert enqueue_digests(builder(h), h.subscriptions, h.outbox, h.clock.now) == 0
        h.clock.advance(7 * 86400)  # next week: again
        assert enqueue_digests(builder(h), h.subscriptions, h.outbox, h.clock.now) == 2
        await dispatcher.run_once()
        assert len(sink.messages) == 4 and len(sink.unique_ids()) == 4
