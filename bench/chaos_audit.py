"""Auditing a chaos run: what stylewatch's database, the SMTP inbox and the webhook log hold,
compared with what the fake hubs released.

The database is read with plain SQL, as an outside observer (none of stylewatch's own
storage code), and the receivers count messages the way real ones deduplicate them: by
Message-ID and by webhook-id. An alert is one (finding, recipient) pair: it is lost when no
message carried it, and duplicated when more than one distinct message did (a resend of the
same message after a crash is counted apart, as a raw duplicate the receiver drops).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from bench.chaos_world import PROBE_FAMILY, Planned, expected_findings
from tests.alertsinks import MailSink, WebhookReceiver

UploadKey = tuple[str, str]  # (source, hub id)
AlertKey = tuple[str, int]  # (recipient: an email address or "webhook", finding id)
PROBED_KINDS = ("lora", "lycoris")
_FINDING_LINK = re.compile(r"/findings/(\d+)\b")


@dataclass(frozen=True, slots=True)
class Progress:
    """A cheap fingerprint of the pipeline's state: it changes whenever work gets done."""

    uploads: tuple[tuple[str, int], ...]
    outbox: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    uploads: list[tuple[str, str, str, str, str]]  # source, hub id, state, kind, family
    findings: list[tuple[int, str, str, str]]  # finding id, source, hub id, artist
    outbox: list[tuple[str, int | None, str, str]]  # status, finding id, channel, address


def progress(engine: Engine) -> Progress:
    with engine.connect() as conn:
        uploads = conn.execute(text("SELECT state, count(*) FROM upload GROUP BY state")).all()
        outbox = conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status")).all()
    return Progress(
        tuple(sorted((str(s), int(n)) for s, n in uploads)),
        tuple(sorted((str(s), int(n)) for s, n in outbox)),
    )


def snapshot(engine: Engine) -> Snapshot:
    with engine.connect() as conn:
        uploads = conn.execute(
            text(
                "SELECT s.name, u.upload_id, u.state, u.kind, u.base_family"
                " FROM upload u JOIN source s ON s.id = u.source_id"
            )
        ).all()
        findings = conn.execute(
            text(
                "SELECT f.id, s.name, u.upload_id, a.name FROM finding f"
                " JOIN upload u ON u.id = f.upload_pk JOIN source s ON s.id = u.source_id"
                " JOIN artist a ON a.id = f.artist_id"
            )
        ).all()
        outbox = conn.execute(
            text(
                "SELECT o.status, o.finding_id, o.channel, sub.address FROM outbox o"
                " JOIN subscription sub ON sub.id = o.subscription_id"
            )
        ).all()
    return Snapshot(
        [(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in uploads],
        [(int(i), str(s), str(u), str(a)) for i, s, u, a in findings],
        [(str(st), None if f is None else int(f), str(c), str(a)) for st, f, c, a in outbox],
    )


def _unfinished(state: str, kind: str, family: str) -> bool:
    """Still on its way: not yet screened, cut off mid-probe, or waiting for its probe."""
    waiting_probe = state == "screened" and kind in PROBED_KINDS and family == PROBE_FAMILY
    return state in ("new", "probing", "requeued") or waiting_probe


def outstanding(snap: Snapshot, released: Iterable[UploadKey]) -> dict[str, int]:
    """What is still to do; all zero once the service has caught up."""
    recorded = {(s, u) for s, u, *_ in snap.uploads}
    return {
        "unrecorded": len(set(released) - recorded),
        "unfinished": sum(_unfinished(st, k, f) for _, _, st, k, f in snap.uploads),
        "outbox_open": sum(status in ("pending", "sending") for status, *_ in snap.outbox),
    }


def mail_alerts(sink: MailSink) -> tuple[dict[AlertKey, set[str]], int]:
    """(recipient, finding id) -> the Message-IDs that carried it; and the raw alert count
    (confirmation mails left out)."""
    carried: dict[AlertKey, set[str]] = defaultdict(set)
    raw = 0
    for message in sink.messages:
        body = message.get_body(preferencelist=("plain",))
        content = body.get_content() if body is not None else ""
        ids = [int(m) for m in _FINDING_LINK.findall(content)]
        if not ids:
            continue  # a confirmation mail
        raw += 1
        for finding_id in ids:
            carried[(str(message["To"]), finding_id)].add(str(message["Message-ID"]))
    return carried, raw


def webhook_alerts(receiver: WebhookReceiver) -> tuple[dict[AlertKey, set[str]], int, int]:
    """("webhook", finding id) -> the webhook-ids that carried it; raw deliveries; and
    deliveries whose signature did not verify."""
    carried: dict[AlertKey, set[str]] = defaultdict(set)
    for request in receiver.requests:
        body: Any = json.loads(request["body"])
        for finding in body.get("data", {}).get("findings", []):
            carried[("webhook", int(finding["finding_id"]))].add(request["headers"]["webhook-id"])
    bad = sum(not r["valid"] for r in receiver.requests)
    return carried, len(receiver.requests), bad


def audit(
    snap: Snapshot,
    released: Mapping[UploadKey, Planned],
    sink: MailSink,
    receiver: WebhookReceiver,
    subscribers: Mapping[str, str],
) -> dict[str, int]:
    """Every figure of the run's verdict (see the module docstring)."""
    upload_rows = Counter((s, u) for s, u, *_ in snap.uploads)
    states = {(s, u): st for s, u, st, _, _ in snap.uploads}
    finding_rows = Counter((s, u, a) for _, s, u, a in snap.findings)
    finding_ids = {(s, u, a): i for i, s, u, a in snap.findings}
    expected = expected_findings(released)
    figures = {
        "uploads_released": len(released),
        "uploads_lost": sum(1 for key in released if key not in upload_rows),
        "uploads_duplicated": sum(n - 1 for n in upload_rows.values()),
        "uploads_failed": sum(st == "failed" for st in states.values()),
        "uploads_unfinished": outstanding(snap, released)["unfinished"],
        "findings_expected": len(expected),
        "findings_missing": len(expected - set(finding_rows)),
        "findings_unexpected": len(set(finding_rows) - expected),
        "findings_duplicated": sum(n - 1 for n in finding_rows.values()),
    }
    return figures | _alert_figures(expected, finding_ids, sink, receiver, subscribers, snap)


def _alert_figures(
    expected: set[tuple[str, str, str]],
    finding_ids: Mapping[tuple[str, str, str], int],
    sink: MailSink,
    receiver: WebhookReceiver,
    subscribers: Mapping[str, str],
    snap: Snapshot,
) -> dict[str, int]:
    mail, mail_raw = mail_alerts(sink)
    hooks, hook_raw, bad = webhook_alerts(receiver)
    delivered = {**mail, **hooks}
    wanted: list[AlertKey | None] = []
    for source, upload_id, artist in expected:
        finding = finding_ids.get((source, upload_id, artist))
        recipients = ["webhook", *(a for a, name in subscribers.items() if name == artist)]
        wanted += [None if finding is None else (r, finding) for r in recipients]
    unique = {i for ids in delivered.values() for i in ids}
    return {
        "alerts_expected": len(wanted),
        "alerts_lost": sum(key is None or key not in delivered for key in wanted),
        "alerts_duplicated": sum(len(ids) - 1 for ids in delivered.values()),
        "alerts_unexpected": len(set(delivered) - {k for k in wanted if k is not None}),
        "deliveries_raw": mail_raw + hook_raw,
        "deliveries_resent": mail_raw + hook_raw - len(unique),
        "webhook_bad_signatures": bad,
        "outbox_not_sent": sum(status != "sent" for status, *_ in snap.outbox),
    }
