"""Takedown reports: what a hub's takedown form asks for (links, file hashes, the artist,
the evidence and the moderators' decisions), as JSON and as plain text to paste."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from monitor.interface.ids import ROUTE_ID
from monitor.web.auth import requires
from monitor.web.context import request_user, web_context
from monitor.web.queue_pages import finding_id
from monitor.web.rendering import error_page
from storage.records import FindingState
from storage.triage import TriageEventRecord
from storage.web_queries import FindingView

REPORT_STATES: tuple[FindingState, ...] = ("confirmed", "taken_down")


def report_item(view: FindingView, events: list[TriageEventRecord]) -> dict[str, Any]:
    f, u = view.finding, view.upload
    return {
        "finding_id": f.id,
        "artist": f.artist,
        "score": round(f.score, 4),
        "stage": f.stage,
        "state": f.state,
        "upload": {
            "source": u.source,
            "upload_id": u.upload_id,
            "name": u.name,
            "url": u.url,
            "uploader": u.uploader,
            "kind": u.kind,
            "base_family": u.base_family,
        },
        "files": [
            {"filename": x.filename, "sha256": x.sha256, "size": x.size, "hashes": dict(x.hashes)}
            for x in u.files
        ],
        "evidence": [
            {"source": e.source, "text": e.text, "blob_sha256": e.blob_sha256}
            for e in view.evidence
        ],
        "decisions": [
            {
                "action": e.action,
                "reason": e.reason,
                "by": e.user_email,
                "at": e.created_at.isoformat(),
            }
            for e in reversed(events)
            if e.action in ("confirm", "dismiss", "escalate", "artist_dismiss")
        ],
    }


def report_text(items: list[dict[str, Any]], generated_at: datetime) -> str:
    lines = [f"stylewatch takedown report, {generated_at:%Y-%m-%d %H:%M} UTC", ""]
    for item in items:
        upload = item["upload"]
        lines += [
            f"Upload: {upload['name']} ({upload['source']} {upload['upload_id']})",
            f"Link: {upload['url'] or 'none recorded'}",
            f"Uploader: {upload['uploader'] or 'unknown'}",
            f"Imitated artist: {item['artist']} (score {item['score']:.2f}, {item['stage']})",
        ]
        lines += [f"File: {f['filename']} sha256 {f['sha256'] or 'unknown'}" for f in item["files"]]
        lines += [f"Evidence [{e['source']}]: {e['text']}" for e in item["evidence"]]
        lines += [f"Decision: {d['action']} by {d['by']}: {d['reason']}" for d in item["decisions"]]
        lines.append("")
    return "\n".join(lines)


async def _finding_items(request: web.Request, view: FindingView) -> list[dict[str, Any]]:
    events = await asyncio.to_thread(web_context(request).triage.events, view.finding.id)
    return [report_item(view, events)]


def _respond(items: list[dict[str, Any]], fmt: str, filename: str) -> web.Response:
    now = datetime.now(UTC)
    disposition = {"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'}
    if fmt == "json":
        body = {"generated_at": now.isoformat(), "items": items}
        text = json.dumps(body, indent=2, ensure_ascii=False)
        return web.Response(text=text, content_type="application/json", headers=disposition)
    return web.Response(
        text=report_text(items, now), content_type="text/plain", headers=disposition
    )


@requires("moderator")
async def finding_report(request: web.Request) -> web.StreamResponse:
    ctx = web_context(request)
    view = await asyncio.to_thread(ctx.queries.finding, finding_id(request))
    if view is None:
        return await error_page(request, 404, "There is no such finding.")
    user = request_user(request)
    assert user is not None
    fmt = request.match_info["fmt"]
    await asyncio.to_thread(ctx.triage.record_action, view.finding.id, user.id, "export", fmt)
    return _respond(await _finding_items(request, view), fmt, f"takedown-{view.finding.id}")


@requires("moderator")
async def hub_report(request: web.Request) -> web.StreamResponse:
    """Every confirmed finding of one hub (``?source=civitai``), for one takedown request."""
    ctx = web_context(request)
    source = request.query.get("source")
    views = await asyncio.to_thread(ctx.queries.queue, REPORT_STATES)
    items: list[dict[str, Any]] = []
    for view in views:
        if source is None or view.finding.source == source:
            items += await _finding_items(request, view)
    return _respond(items, request.match_info["fmt"], f"takedown-{source or 'all'}")


def add_report_routes(app: web.Application) -> None:
    app.router.add_get(
        f"/findings/{{finding_id:{ROUTE_ID}}}/report.{{fmt:json|txt}}", finding_report
    )
    app.router.add_get(r"/reports/takedown.{fmt:json|txt}", hub_report)
