"""Setting the chaos run up the way an operator would: a config file pointing stylewatch at
the fake hubs, the local SMTP server and the webhook receiver; artists registered with the
CLI (reference images for the styled ones); email subscriptions confirmed by following the
links the confirmation mails carry."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.chaos_procs import cli
from bench.chaos_world import ARTISTS, NAMED, PROBE_FAMILY, Artist, Models
from tests.alertsinks import MailSink

CIVITAI_KEY = "cv-chaos-key-0123456789"
HF_TOKEN = "hf_chaos_token_0123456789"
WEBHOOK_SECRET = "whsec_chaos_0123456789abcdef"
FROM_ADDR = "stylewatch@chaos.test"
POLL_INTERVAL_S = 30  # the settings' minimum
# Faster than the defaults (30 s, 10 s, 30 s) so that a short run settles in seconds: the
# sweep queues what the pollers recorded, and a killed worker's job is retried sooner.
SWEEP_INTERVAL_S = 2
HEARTBEAT_S = 2
STALLED_AFTER_S = 10
_CONFIRM_LINK = re.compile(r"(http://\S+/subscriptions/confirm/\S+)")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the bench's servers listen, and where stylewatch's web UI will."""

    civitai: str
    huggingface: str
    smtp_port: int
    webhook: str
    web_port: int

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"


def _toml(value: object) -> str:
    """A TOML value: JSON's strings, numbers and booleans are TOML's too."""
    return json.dumps(value)


def config_text(
    data_dir: Path,
    endpoints: Endpoints,
    models: Models,
    database_url: str | None = None,
    *,
    alerts: bool = True,
    fast_queue: bool = True,
) -> str:
    """The config every stylewatch process of the run reads (``alerts`` False: no email or
    webhook delivery configured; ``fast_queue`` False: the queue's default intervals)."""
    fast = [
        f"sweep_interval_s = {SWEEP_INTERVAL_S}",
        f"heartbeat_s = {HEARTBEAT_S}",
        f"stalled_after_s = {STALLED_AFTER_S}",
    ]
    lines = [
        f"data_dir = {_toml(str(data_dir))}",
        "[database]",
        *([f"url = {_toml(database_url)}"] if database_url else []),
        "[queue]",
        f"backend = {_toml('procrastinate' if database_url else 'inprocess')}",
        *(fast if fast_queue else []),
        "[sources.civitai]",
        f"base_url = {_toml(endpoints.civitai)}",
        f"api_key = {_toml(CIVITAI_KEY)}",
        f"interval = {POLL_INTERVAL_S}",
        "[sources.huggingface]",
        f"endpoint = {_toml(endpoints.huggingface)}",
        f"token = {_toml(HF_TOKEN)}",
        f"interval = {POLL_INTERVAL_S}",
        "[probe]",
        'device = "cpu"',
        f"base_models = {{ {PROBE_FAMILY} = {_toml(str(models.base))} }}",
        # The tiny pipeline's own drawing settings (tests/probe_models.py).
        "steps = 2",
        "guidance_scale = 1.0",
        "size_px = 32",
        "[web]",
        'host = "127.0.0.1"',
        f"port = {endpoints.web_port}",
        f"base_url = {_toml(endpoints.web)}",
    ]
    return "\n".join(lines + (_alert_lines(endpoints) if alerts else [])) + "\n"


def _alert_lines(endpoints: Endpoints) -> list[str]:
    return [
        "[alerts]",
        "batch_window_s = 0",
        "poll_interval_s = 0.5",
        "retry_base_s = 1",
        "[alerts.email]",
        "enabled = true",
        'smtp_host = "127.0.0.1"',
        f"smtp_port = {endpoints.smtp_port}",
        "starttls = false",
        f"from_addr = {_toml(FROM_ADDR)}",
        "timeout_s = 10",
        "[[alerts.webhooks]]",
        f"url = {_toml(endpoints.webhook)}",
        f"secret = {_toml(WEBHOOK_SECRET)}",
        "allow_loopback = true",
        "timeout_s = 10",
    ]


async def register(env: Mapping[str, str], models: Models, folder: Path) -> None:
    """The artists (one import for the named ones, ``artist add --images`` for the styled
    ones) and each subscriber's email subscription (unconfirmed: a link is mailed)."""
    listing = folder / "artists.toml"
    listing.write_text("".join(f"[[artist]]\nname = {_toml(n)}\n" for n in NAMED))
    await cli(env, "artist", "import", str(listing))  # first: it creates the database

    async def one(artist: Artist) -> None:
        if artist.name in models.references:
            images = str(models.references[artist.name])
            await cli(env, "artist", "add", artist.name, "--images", images)
        if artist.subscriber:
            await cli(env, "subscribe", artist.name, "--email", artist.subscriber)

    await asyncio.gather(*(one(a) for a in ARTISTS))


def confirm_links(sink: MailSink) -> list[str]:
    links = []
    for message in sink.messages:
        body = message.get_body(preferencelist=("plain",))
        found = _CONFIRM_LINK.search(body.get_content() if body is not None else "")
        if found:
            links.append(found.group(1))
    return links


async def confirm(session: aiohttp.ClientSession, links: Sequence[str]) -> None:
    """Follow each confirmation link on the running service, as the subscriber would."""
    for link in links:
        async with session.get(link) as resp:
            if resp.status != 200:
                raise RuntimeError(f"confirming a subscription answered {resp.status}")


def subscribers() -> dict[str, str]:
    """Email address -> the artist it follows."""
    return {a.subscriber: a.name for a in ARTISTS if a.subscriber}
