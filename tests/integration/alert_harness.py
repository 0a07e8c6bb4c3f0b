"""A store, an outbox and a dispatcher over one test database, with a fake clock and a
sleep that only advances it; channels are the real ones, pointed at local receivers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from alerts.base import Channel
from alerts.dispatcher import DeliveryPolicy, Dispatcher
from alerts.email import EmailChannel
from alerts.links import Links
from alerts.render import MessageRenderer
from alerts.settings import EmailSettings
from detectors.results import ArtistMatch, Evidence
from storage.outbox import OutboxStore
from storage.store import Store
from storage.subscriptions import SubscriptionStore
from tests.integration.conftest import FakeClock

BASE_URL = "https://sw.example.org"
WEB_SECRET = "test-secret"
SECRET = hashlib.sha256(WEB_SECRET.encode()).digest()  # what web_secret_key derives
POLICY = DeliveryPolicy(
    window_s=60, lease_s=120, max_attempts=3, retry_base_s=10, retry_cap_s=25, poll_interval_s=1
)


def email_channel(port: int, clock: FakeClock) -> EmailChannel:
    settings = EmailSettings(
        enabled=True,
        smtp_host="127.0.0.1",
        smtp_port=port,
        starttls=False,
        from_addr="alerts@sw.example.org",
        timeout_s=2,
    )
    return EmailChannel(settings, MessageRenderer(BASE_URL), clock)


@dataclass
class Harness:
    store: Store
    engine: Engine
    clock: FakeClock
    links: Links = field(default_factory=lambda: Links(BASE_URL, SECRET))
    uploads: int = 0

    @property
    def subscriptions(self) -> SubscriptionStore:
        return SubscriptionStore(self.engine, self.clock)

    @property
    def outbox(self) -> OutboxStore:
        return OutboxStore(self.engine, self.clock)

    def dispatcher(
        self,
        channels: Mapping[str, Channel],
        outbox: OutboxStore | None = None,
        policy: DeliveryPolicy = POLICY,
    ) -> Dispatcher:
        async def sleep(seconds: float) -> None:
            self.clock.advance(seconds)

        return Dispatcher(
            outbox or self.outbox,
            self.subscriptions,
            channels,
            self.links,
            policy,
            clock=self.clock,
            sleep=sleep,
        )

    def find(self, artist_id: int, artist: str, score: float = 0.9, **extra: Any) -> int:
        """Record a new upload with one finding for the artist; returns the finding id."""
        self.uploads += 1
        upload, _ = self.store.record_upload(
            extra.get("source", "civitai"),
            f"v{self.uploads}",
            extra.get("name", f"{artist} style v{self.uploads}"),
            url=extra.get("url"),
        )
        evidence = extra.get("evidence", (Evidence("ss_tag_frequency", f"by {artist.lower()}"),))
        match = ArtistMatch(artist_id, artist, score, "metadata", evidence)
        return self.store.record_findings(upload.id, [match])[0].id
