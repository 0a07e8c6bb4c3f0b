"""Where takedowns show: the weekly digests, ``findings --json``'s ``hub_status``, the
artist portal ("taken down on <date>"), the audit log (by the system), and the moderators'
list of confirmed uploads still up after N days."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from alerts.digest import DigestBuilder
from alerts.render import MessageRenderer
from monitor.interface.json_views import flagged_uploads_json
from storage.digest_data import DigestData
from storage.takedowns import Takedowns
from storage.triage import TriageStore
from storage.users import UserStore
from tests.integration.alert_harness import BASE_URL, Harness
from tests.web_env import (  # noqa: F401
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)

DAY_S = 86_400


def confirm(h: Harness, finding_id: int) -> None:
    users = UserStore(h.engine)
    known = users.list_users()
    moderator = known[0] if known else users.add_user("mod@example.org", "moderator", "x")
    TriageStore(h.engine, clock=h.clock).decide(finding_id, moderator.id, "confirm", "yes")


def test_digests_show_the_weeks_takedowns(store, engine, clock) -> None:
    h = Harness(store, engine, clock)
    artist = store.add_artist("Ilse Varnhagen")
    old = h.find(artist.id, artist.name, name="varnhagen_ink_v1")
    kept = h.find(artist.id, artist.name, name="varnhagen_ink_v2")
    confirm(h, old)
    confirm(h, kept)
    clock.advance(9 * DAY_S)
    upload_pk = next(f.upload_pk for f in store.list_findings() if f.id == old)
    assert Takedowns(engine, clock=clock).record(upload_pk, status="removed", reason="404") == [old]
    clock.advance(DAY_S)
    builder = DigestBuilder(DigestData(engine), MessageRenderer(BASE_URL), h.links)
    message = builder.artist(artist.id, clock.now)
    assert message is not None
    assert "varnhagen_ink_v1 on civitai, taken down on 2024-05-10" in message.text
    assert "varnhagen_ink_v2" not in message.text.split("Earlier findings")[0]
    assert "taken down on 2024-05-10" in message.html
    moderators = builder.moderators(clock.now)
    assert "1 confirmed upload was taken down from its hub this week." in moderators.text
    clock.advance(8 * DAY_S)  # a week on: no longer news
    later = builder.artist(artist.id, clock.now)
    assert later is not None and "taken down on" not in later.text


def test_findings_json_carries_hub_status_and_the_takedown_date(store, engine, clock) -> None:
    h = Harness(store, engine, clock)
    artist = store.add_artist("Ilse Varnhagen")
    gone, up, unchecked = (h.find(artist.id, artist.name) for _ in range(3))
    for finding in (gone, up, unchecked):
        confirm(h, finding)
    pk = {f.id: f.upload_pk for f in store.list_findings()}
    takedowns = Takedowns(engine, clock=clock)
    takedowns.record(pk[gone], status="gated", reason="the repo is gated (manual)")
    takedowns.record(pk[up], status="up", reason=None)
    records = store.list_findings()
    checks = takedowns.checks(list(pk.values()))
    items = {i["upload_id"]: i for i in flagged_uploads_json(records, checks)}
    by_finding = {f.id: items[f.upload_id] for f in records}
    when = clock.now.isoformat()
    assert by_finding[gone]["state"] == "taken_down"
    assert by_finding[gone]["findings"][0]["taken_down_at"] == when
    assert by_finding[gone]["hub_status"] == {
        "checked_at": when,
        "up": False,
        "status": "gated",
        "gone_at": when,
    }
    assert by_finding[up]["hub_status"]["up"] is True
    assert by_finding[up]["findings"][0]["taken_down_at"] is None
    assert by_finding[unchecked]["hub_status"] is None
    assert "hub_status" not in flagged_uploads_json(records)[0]  # only when asked


async def test_portal_queue_and_audit_show_takedowns(visitors, seeded, web_runtime) -> None:
    engine = web_runtime.engine
    moderator = next(u for u in UserStore(engine).list_users() if u.role == "moderator")
    long_ago = datetime.now(UTC) - timedelta(days=9)
    triage = TriageStore(engine, clock=lambda: long_ago)
    for label in ("mira_v2", "okafor_wc", "wren"):
        triage.decide(seeded.findings[label], moderator.id, "confirm", "her style")
    findings = {f.id: f for f in web_runtime.store.list_findings()}
    gone = findings[seeded.findings["mira_v2"]]
    takedowns = Takedowns(engine)
    takedowns.record(gone.upload_pk, status="removed", reason="the version answers HTTP 404")
    takedowns.record(findings[seeded.findings["okafor_wc"]].upload_pk, status="up", reason=None)
    today = datetime.now(UTC).strftime("%Y-%m-%d")

    artist = await visitors("mira@example.org")
    portal = (await artist.get("/me")).text
    assert f"taken down on {today}" in portal
    mod = await visitors("mod@example.org")
    resolved = (await mod.get("/queue?tab=resolved")).text
    assert f"taken down on {today}" in resolved and 'href="/queue/still-up"' in resolved
    audit = (await mod.get("/audit")).text
    assert "taken_down" in audit and "the version answers HTTP 404" in audit
    still = await mod.get("/queue/still-up")
    assert still.status == 200
    listed = {int(i) for i in _ids(still.text)}
    assert listed == {seeded.findings["okafor_wc"], seeded.findings["wren"]}
    assert "not checked on the hub yet" in still.text and "9 days ago" in still.text
    assert (await artist.get("/queue/still-up")).status == 403  # moderators only


def _ids(page: str) -> list[str]:
    return re.findall(r'id="still-(\d+)"', page)
