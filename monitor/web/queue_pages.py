"""The moderator's pages: the triage queue, one finding, decisions, bulk actions, audit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast, get_args
from urllib.parse import urlencode

from aiohttp import web

from detectors.errors import InputError
from monitor.interface.ids import ROUTE_ID, parse_id, query_id
from monitor.pipeline.states import move
from monitor.sources import SOURCE_NAMES
from monitor.web.auth import requires
from monitor.web.context import request_user, web_context
from monitor.web.evidence_strength import strength, tag_counts
from monitor.web.login import safe_next
from monitor.web.probe_status import over_budget, probe_status
from monitor.web.queue_groups import queue_cards
from monitor.web.rendering import error_page, render
from storage.probe_jobs import PROBE_ASKED
from storage.records import FindingState
from storage.triage import AuditFilter, Decision, FindingClaimed, FindingNotFound
from storage.web_queries import QueueFilter, QueueSort

TABS: dict[str, tuple[str, tuple[FindingState, ...]]] = {
    "needs_review": ("Needs review", ("needs_review",)),
    "escalated": ("Escalated", ("escalated",)),
    "resolved": ("Resolved", ("confirmed", "dismissed", "taken_down")),
}


def finding_id(request: web.Request) -> int:
    return int(request.match_info["finding_id"])


def parse_decision(value: object) -> Decision:
    if value not in get_args(Decision):
        raise InputError("choose confirm, dismiss or escalate")
    return cast(Decision, value)


SORTS: dict[str, str] = {"score": "Highest score", "newest": "Newest", "oldest": "Oldest"}
STAGES = ("metadata", "hubtext", "probe")
FILTER_KEYS = ("q", "artist", "source", "stage", "min_score", "since", "sort")


def queue_filter(query: Mapping[str, str]) -> QueueFilter:
    """The filter a queue URL names (so a view can be shared); InputError for a bad value."""
    text = query.get("q", "").strip()[:200]
    source = query.get("source", "")
    if source and source not in SOURCE_NAMES:
        raise InputError(f"source must be one of {', '.join(SOURCE_NAMES)}")
    stage = query.get("stage", "")
    if stage and stage not in STAGES:
        raise InputError(f"stage must be one of {', '.join(STAGES)}")
    sort = query.get("sort", "score") or "score"
    if sort not in SORTS:
        raise InputError(f"sort must be one of {', '.join(SORTS)}")
    min_score = 0.0
    if raw := query.get("min_score", "").strip():
        try:
            min_score = float(raw)
        except ValueError:
            min_score = -1.0
        if not 0.0 <= min_score <= 1.0:
            raise InputError("the minimum score is a number from 0 to 1")
    since = None
    if raw := query.get("since", "").strip():
        try:
            since = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InputError("since is a date like 2026-12-01") from None
    return QueueFilter(
        text=text,
        artist=query.get("artist", "").strip()[:200],
        source=source,
        stage=stage,
        min_score=min_score,
        since=since,
        sort=cast(QueueSort, sort),
    )


@requires("moderator")
async def queue_page(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    tab = request.query.get("tab", "needs_review")
    if tab not in TABS:
        tab = "needs_review"
    try:
        where = queue_filter(request.query)
        after = query_id(request.query, "after")
    except InputError as exc:
        return await error_page(request, 400, f"This queue view cannot be shown: {exc}.")
    page = await asyncio.to_thread(ctx.queries.queue_page, TABS[tab][1], where, after)
    views = page.views
    leases = await asyncio.to_thread(ctx.triage.leases, [v.finding.id for v in views])
    snapshot = await asyncio.to_thread(ctx.queries.metrics)
    counts = {
        key: sum(snapshot.findings_by_state.get(s, 0) for s in states)
        for key, (_, states) in TABS.items()
    }
    kept = {k: request.query[k] for k in FILTER_KEYS if request.query.get(k)}
    context = {
        "tabs": TABS,
        "tab": tab,
        "counts": counts,
        "malformed": sum(snapshot.malformed_by_source.values()),
        "views": views,
        "cards": queue_cards(views),
        "leases": leases,
        "skipped": request.query.get("skipped"),
        "filters": kept,
        "tab_urls": {key: "/queue?" + urlencode({"tab": key, **kept}) for key in TABS},
        "filtered": bool(kept.keys() - {"sort"}),
        "total": page.total,
        "first_page": after is None,
        "here": "/queue?" + urlencode({"tab": tab, **kept, **({"after": after} if after else {})}),
        "next_url": None
        if page.next_after is None
        else "/queue?" + urlencode({"tab": tab, **kept, "after": page.next_after}),
        "first_url": "/queue?" + urlencode({"tab": tab, **kept}),
        "sources": SOURCE_NAMES,
        "stages": STAGES,
        "sorts": SORTS,
    }
    return await render(request, "queue.html", context)


@requires("moderator")
async def malformed_page(request: web.Request) -> web.StreamResponse:
    """Uploads whose metadata no trainer writes: refused by screening, not called clean."""
    uploads = await asyncio.to_thread(web_context(request).queries.malformed_uploads)
    return await render(request, "malformed.html", {"uploads": uploads})


@requires("moderator", "artist")
async def finding_page(request: web.Request) -> web.StreamResponse:
    """One finding: the moderator's working page, or, for the artist it concerns, a read-only
    view of the same evidence (another artist's finding is "no such finding", as if absent)."""
    ctx = web_context(request)
    view = await asyncio.to_thread(ctx.queries.finding, finding_id(request))
    user = request_user(request)
    if view is None or (
        user is not None and user.role == "artist" and view.finding.artist_id != user.artist_id
    ):
        return await error_page(request, 404, "There is no such finding.")
    leases = await asyncio.to_thread(ctx.triage.leases, [view.finding.id])
    events = await asyncio.to_thread(ctx.triage.events, view.finding.id)
    counts = tag_counts(view.upload.files)
    context = {
        "view": view,
        "lease": leases.get(view.finding.id),
        "events": events,
        "probe": probe_status(view, ctx.probe_families),
        "over_budget": over_budget(view),
        "strength": {
            (e.source, e.text): found
            for e in view.evidence
            if (found := strength(counts, e.source, e.text)) is not None
        },
    }
    return await render(request, "finding.html", context)


@requires("moderator")
async def claim(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    assert user is not None
    try:
        await asyncio.to_thread(web_context(request).triage.claim, finding_id(request), user.id)
    except FindingClaimed as exc:
        return await error_page(request, 409, str(exc))
    except FindingNotFound:
        return await error_page(request, 404, "There is no such finding.")
    raise web.HTTPSeeOther(f"/findings/{finding_id(request)}")


@requires("moderator")
async def decide(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    assert user is not None
    form = await request.post()
    try:
        decision = parse_decision(form.get("decision"))
        reason = str(form.get("reason", ""))
        triage = web_context(request).triage
        await asyncio.to_thread(triage.decide, finding_id(request), user.id, decision, reason)
    except FindingClaimed as exc:
        return await error_page(request, 409, str(exc))
    except FindingNotFound:
        return await error_page(request, 404, "There is no such finding.")
    except InputError as exc:
        return await error_page(request, 400, f"Not decided: {exc}.")
    raise web.HTTPSeeOther(safe_next(str(form.get("next", ""))) or "/queue")


@requires("moderator")
async def bulk_decide(request: web.Request) -> web.StreamResponse:
    user = request_user(request)
    assert user is not None
    form = await request.post()
    ids = [i for v in form.getall("finding_id", []) if isinstance(v, str) and (i := parse_id(v))]
    tab = str(form.get("tab", "needs_review"))
    try:
        decision = parse_decision(form.get("decision"))
        if not ids:
            raise InputError("select at least one finding")
        triage = web_context(request).triage
        result = await asyncio.to_thread(
            triage.decide_many, ids, user.id, decision, str(form.get("reason", ""))
        )
    except InputError as exc:
        return await error_page(request, 400, f"Not decided: {exc}.")
    skipped = f"&skipped={len(result.skipped)}" if result.skipped else ""
    back = safe_next(str(form.get("next", "")))  # the filtered view the moderator was on
    if back is None or not back.startswith("/queue?"):
        back = f"/queue?tab={tab if tab in TABS else 'needs_review'}"
    raise web.HTTPSeeOther(back + skipped)


AUDIT_PAGE = 100
AUDIT_KEYS = ("who", "action", "artist", "upload")


@requires("moderator")
async def audit_page(request: web.Request) -> web.StreamResponse:
    """Every triage action, newest first, naming the upload and artist; filters and the
    ``before`` cursor in the URL."""
    triage = web_context(request).triage
    kept = {k: request.query[k].strip()[:320] for k in AUDIT_KEYS if request.query.get(k)}
    try:
        before = query_id(request.query, "before")
    except InputError as exc:
        return await error_page(request, 400, f"This audit view cannot be shown: {exc}.")
    where = AuditFilter(**kept)
    events = await asyncio.to_thread(
        lambda: triage.events(limit=AUDIT_PAGE + 1, where=where, before=before)
    )
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    context = {
        "events": events,
        "filters": kept,
        "actions": await asyncio.to_thread(triage.actions),
        "next_url": "/audit?" + urlencode({**kept, "before": events[-1].id}) if more else None,
        "first_url": "/audit?" + urlencode(kept) if before is not None else None,
    }
    return await render(request, "audit.html", context)


@requires("moderator")
async def queue_probe(request: web.Request) -> web.StreamResponse:
    """Queue a checkpoint the size budget left unprobed: back to "screened", with leave to
    go past the budget (`storage.probe_jobs.PROBE_ASKED`)."""
    ctx = web_context(request)
    view = await asyncio.to_thread(ctx.queries.finding, finding_id(request))
    if view is None:
        return await error_page(request, 404, "There is no such finding.")
    if not over_budget(view):
        return await error_page(request, 409, "This upload is not held back by the size budget.")
    await asyncio.to_thread(
        move, ctx.store, "moderate", view.upload.id, "screened", error=PROBE_ASKED
    )
    raise web.HTTPSeeOther(f"/findings/{view.finding.id}")


def add_queue_routes(app: web.Application) -> None:
    app.router.add_get("/queue", queue_page)
    app.router.add_post("/queue/bulk", bulk_decide)
    app.router.add_get("/audit", audit_page)
    app.router.add_get("/queue/malformed", malformed_page)
    app.router.add_get(f"/findings/{{finding_id:{ROUTE_ID}}}", finding_page)
    app.router.add_post(f"/findings/{{finding_id:{ROUTE_ID}}}/claim", claim)
    app.router.add_post(f"/findings/{{finding_id:{ROUTE_ID}}}/decide", decide)
    app.router.add_post(f"/findings/{{finding_id:{ROUTE_ID}}}/probe", queue_probe)
