"""The weekly digest: per artist, the week's new findings (with their top evidence), the
uploads taken down from their hubs that week, and where earlier ones stand; for moderator
teams, the queue figures, the week's takedowns and its highest scores.

Digests go through the outbox like alerts (retries, dead letters), enqueued under the key
(subscription, ISO week), so a second run in the same week (the cron job, then
`stylewatch digest --send`) sends nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.base import FindingAlert, PreparedMessage
from alerts.compose import finding_alert
from alerts.links import Links
from alerts.render import MessageRenderer
from storage.alert_records import SubscriptionRecord
from storage.digest_data import DigestData
from storage.outbox import OutboxStore, finding_snapshot
from storage.records import FindingRecord
from storage.subscriptions import SubscriptionStore

WEEK = timedelta(days=7)
TOP_EVIDENCE = 3


def iso_week(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class DigestBuilder:
    data: DigestData
    renderer: MessageRenderer
    links: Links

    def artist(
        self, artist: str | int, now: datetime, unsubscribe_url: str | None = None
    ) -> PreparedMessage | None:
        """The artist's digest for the week ending ``now``; None when there is nothing at
        all to say (no finding ever). Raises ``InputError`` for an unknown artist."""
        week = self.data.artist_week(artist, now - WEEK, now)
        if not week.new and not week.earlier:
            return None
        return self.renderer.render(
            "digest_artist",
            f"stylewatch weekly digest for {week.artist}, {iso_week(now)}",
            artist=week.artist,
            findings=[self._finding(r) for r in week.new],
            earlier=sorted(week.earlier.items()),
            taken_down=[self._taken_down(r) for r in week.taken_down],
            unsubscribe_url=unsubscribe_url,
        )

    def moderators(self, now: datetime, unsubscribe_url: str | None = None) -> PreparedMessage:
        figures = self.data.queue(now - WEEK, now)
        oldest = figures.oldest_open_at
        return self.renderer.render(
            "digest_moderators",
            f"stylewatch moderators' digest, {iso_week(now)}",
            new_count=figures.new_this_week,
            by_state=sorted(figures.by_state.items()),
            oldest_open=oldest.strftime("%Y-%m-%d") if oldest else None,
            findings=[self._finding(r) for r in figures.top],
            taken_down_count=figures.taken_down_this_week,
            unsubscribe_url=unsubscribe_url,
        )

    def for_subscription(
        self, subscription: SubscriptionRecord, now: datetime
    ) -> PreparedMessage | None:
        unsubscribe = self.links.unsubscribe(subscription.id, subscription.address)
        if subscription.artist_id is None:
            return self.moderators(now, unsubscribe)
        return self.artist(subscription.artist_id, now, unsubscribe)

    def _taken_down(self, record: FindingRecord) -> dict[str, str | None]:
        """A finding whose upload left its hub: what, where, and the day it was seen gone."""
        when = record.taken_down_at
        return {
            "name": record.name,
            "source": record.source,
            "on": when.strftime("%Y-%m-%d") if when else None,
            "finding_url": self.links.finding(record.id),
        }

    def _finding(self, record: FindingRecord) -> FindingAlert:
        snapshot = finding_snapshot(record, None)
        snapshot["evidence"] = snapshot["evidence"][:TOP_EVIDENCE]
        return finding_alert(snapshot, self.links)


def enqueue_digests(
    builder: DigestBuilder,
    subscriptions: SubscriptionStore,
    outbox: OutboxStore,
    now: datetime,
) -> int:
    """Enqueue this week's digest for every confirmed digest subscription that has not had
    it yet; returns how many were enqueued. Sync: call it in a thread."""
    week, added = iso_week(now), 0
    for subscription in subscriptions.list_all():
        if subscription.channel != "digest" or not subscription.active:
            continue
        message = builder.for_subscription(subscription, now)
        if message is None:
            continue
        payload = {"week": week, "subject": message.subject}
        payload |= {"text": message.text, "html": message.html}
        key = f"digest:{week}:subscription:{subscription.id}"
        added += outbox.enqueue_prepared(subscription.id, key, "digest", payload)
    return added
