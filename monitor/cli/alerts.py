"""CLI commands for alerts: subscriptions, deliveries, the dispatcher and the digest."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from alerts.digest import iso_week
from alerts.dispatcher import DispatchSummary
from monitor.build import alerts as alert_service
from monitor.cli.context import cli_state, err, fail, out, plural, print_json
from monitor.cli.options import JsonOption
from monitor.interface.ids import parse_id
from monitor.interface.terminal_text import shown
from monitor.pipeline.alert import send_digests
from monitor.runtime import Runtime, open_runtime
from storage.alert_records import DeliveryRecord, SubscriptionRecord
from storage.outbox import OutboxStore
from storage.subscriptions import SubscriptionStore


def subscribe(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--email", help="The address to send to")],
    artist: Annotated[str | None, typer.Argument(help="The artist (name or id)")] = None,
    team: Annotated[
        str | None, typer.Option("--team", help="A moderator team instead of an artist")
    ] = None,
    digest: Annotated[bool, typer.Option("--digest", help="Weekly digest only")] = False,
    min_score: Annotated[
        float, typer.Option("--min-score", help="Only findings scoring at least this (0-1)")
    ] = 0.0,
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="The operator vouches: skip the confirmation")
    ] = False,
) -> None:
    """Subscribe an address to an artist's (or a team's) alerts; it gets nothing until the
    confirmation link is followed (printed here, and mailed when email is enabled)."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        store = SubscriptionStore(runtime.engine)
        artist_key: str | int | None = parse_id(artist) or artist
        record = store.add(
            "digest" if digest else "email",
            email,
            artist=artist_key,
            team=team,
            min_score=min_score,
            confirmed=confirmed,
        )
        _announce(runtime, record)


def _announce(runtime: Runtime, record: SubscriptionRecord) -> None:
    about = shown(record.artist or f"team {record.team}")
    out.print(f"subscription #{record.id}: {shown(record.address)} ({record.channel}) for {about}")
    if record.confirmed_at is not None:
        out.print("confirmed")
        return
    link = alert_service.build_links(runtime.settings).confirm(record.id, record.address)
    out.print(f"confirm it at: {link}", markup=False)
    if asyncio.run(alert_service.send_confirmation(runtime, record)):
        out.print(f"confirmation link mailed to {shown(record.address)}")


def subscriptions(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """List the subscriptions."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        records = SubscriptionStore(runtime.engine).list_all()
    if as_json:
        print_json([_subscription_json(r) for r in records])
        return
    table = Table(title=f"{len(records)} subscriptions")
    for column in ("id", "for", "channel", "address", "min score", "state"):
        table.add_column(column)
    for r in records:
        state = "disabled" if r.disabled_at else "confirmed" if r.confirmed_at else "unconfirmed"
        who = r.artist or f"team {r.team}"
        table.add_row(
            str(r.id), shown(who), r.channel, shown(r.address), f"{r.min_score:.2f}", state
        )
    out.print(table)


def _subscription_json(r: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "artist": r.artist,
        "team": r.team,
        "channel": r.channel,
        "address": r.address,
        "min_score": r.min_score,
        "confirmed": r.confirmed_at is not None,
        "disabled_reason": r.disabled_reason,
    }


def unsubscribe(
    ctx: typer.Context,
    subscription_id: Annotated[int, typer.Argument(help="The subscription's id")],
) -> None:
    """Remove a subscription and its undelivered alerts."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        removed = SubscriptionStore(runtime.engine).remove(subscription_id)
    if not removed:
        raise fail(f"no subscription #{subscription_id}")
    out.print(f"subscription #{subscription_id} removed")


def confirm(
    ctx: typer.Context,
    link: Annotated[str, typer.Argument(help="The confirmation link (or its token)")],
) -> None:
    """Confirm a subscription from its link, on the subscriber's behalf."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        claim = alert_service.build_links(runtime.settings).read_confirm(link)
        if claim is None:
            raise fail("the confirmation link is damaged or expired")
        record = SubscriptionStore(runtime.engine).confirm(*claim)
    if record is None:
        raise fail("that subscription no longer exists")
    out.print(f"subscription #{record.id} confirmed for {shown(record.address)}")


def deliveries(
    ctx: typer.Context,
    as_json: JsonOption = False,
    every: Annotated[bool, typer.Option("--all", help="Every delivery, not only dead")] = False,
) -> None:
    """Dead-lettered deliveries and why they failed (--all: every delivery)."""
    with open_runtime(cli_state(ctx).settings) as runtime:
        records = OutboxStore(runtime.engine).deliveries(None if every else "dead")
    if as_json:
        print_json([_delivery_json(r) for r in records])
        return
    if not records:
        out.print("no deliveries" if every else "no dead letters")
    for r in records:
        out.print(
            f"#{r.id} {r.status} {r.channel} {shown(r.address)} "
            f"tries={r.attempts} {shown(r.last_error or '')}"
        )


def _delivery_json(r: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "idempotency_key": r.idempotency_key,
        "message_id": r.batch_key,
        "channel": r.channel,
        "address": r.address,
        "artist": r.artist,
        "finding_id": r.finding_id,
        "status": r.status,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "next_attempt_at": r.next_attempt_at.isoformat(),
        "sent_at": r.sent_at.isoformat() if r.sent_at else None,
    }


def deliver(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Deliver what is due, then exit")] = False,
) -> None:
    """Deliver the due alerts once (`stylewatch serve` delivers continuously)."""
    if not once:
        raise fail("use --once; `stylewatch serve` delivers continuously")
    with open_runtime(cli_state(ctx).settings) as runtime:
        summary = asyncio.run(alert_service.deliver_once(runtime))
    out.print(f"{summary.sent} sent, {summary.retried} to retry, {summary.dead} dead-lettered")
    for reason in summary.errors:
        err.print(f"warning: {reason}", markup=False)


def digest(
    ctx: typer.Context,
    preview: Annotated[bool, typer.Option("--preview", help="Show it; send nothing")] = False,
    send: Annotated[bool, typer.Option("--send", help="Send this week's digests now")] = False,
    artist: Annotated[
        str | None, typer.Option("--artist", help="Preview this artist's digest")
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option("--out", help="Where --preview writes the HTML (default: data dir)"),
    ] = None,
) -> None:
    """The weekly digest: --preview prints it (an artist's, or the moderators') and writes
    its HTML to a file; --send sends this week's digests now (once per recipient and week)."""
    if preview == send:
        raise fail("use exactly one of --preview and --send")
    with open_runtime(cli_state(ctx).settings) as runtime:
        if preview:
            _preview(runtime, artist, html_out)
        else:
            added, summary = asyncio.run(_send_now(runtime))
            _report_digests(runtime, added, summary)


def _preview(runtime: Runtime, artist: str | None, html_out: Path | None) -> None:
    now = alert_service.utc_now()
    builder = alert_service.digest_builder(runtime)
    if artist is None:
        message = builder.moderators(now)
    else:
        found = builder.artist(parse_id(artist) or artist, now)
        if found is None:
            out.print(f"no findings for {shown(artist)}: no digest would be sent")
            return
        message = found
    slug = re.sub(r"[^a-z0-9]+", "-", (artist or "moderators").lower()).strip("-")
    target = html_out or runtime.settings.data_dir / "digests" / f"{iso_week(now)}-{slug}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(message.html, encoding="utf-8")
    out.print(message.text, markup=False, highlight=False)
    out.print(f"HTML written to {shown(str(target))}")


async def _send_now(runtime: Runtime) -> tuple[int, DispatchSummary | None]:
    await asyncio.to_thread(alert_service.sync_webhooks, runtime)
    async with alert_service.create_webhook_session() as session:
        dispatcher = alert_service.build_dispatcher(runtime, session)
        builder = alert_service.digest_builder(runtime)
        return await send_digests(builder, runtime.engine, dispatcher, alert_service.utc_now())


def _report_digests(runtime: Runtime, added: int, summary: DispatchSummary | None) -> None:
    """What `digest --send` did, in words: how many were queued, sent, and what is left."""
    if added == 0:
        out.print(
            "no digests to send: every confirmed digest subscriber with findings already "
            "has this week's"
        )
    if not runtime.settings.alerts.email.enabled:
        if added:
            out.print(
                f"{plural(added, 'digest')} queued, none sent: email is off "
                "([alerts.email] enabled = false); they go out once it is on and serve runs",
                markup=False,
            )
        return
    if summary is None:
        return
    line = f"{plural(summary.sent, 'message')} sent"
    if added:
        line = f"{plural(added, 'digest')} queued; {line}"
    if summary.retried:
        line += f"; {summary.retried} failed and will be retried by serve"
    if summary.dead:
        line += f"; {summary.dead} dead-lettered (see `stylewatch deliveries`)"
    out.print(line, markup=False)
    for reason in summary.errors:
        err.print(f"warning: {reason}", markup=False)
