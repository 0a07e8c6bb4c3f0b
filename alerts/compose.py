"""From a claimed outbox batch to the `Alert` a channel sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.base import Alert, EvidenceLine, FindingAlert, PreparedMessage
from alerts.links import Links
from storage.alert_records import OutboxBatch

UNSUBSCRIBABLE = ("email", "digest")


def compose(batch: OutboxBatch, links: Links) -> Alert:
    """The message for ``batch``; its id is the batch key, stable across retries."""
    subscription = batch.subscription
    unsubscribe = (
        links.unsubscribe(subscription.id, subscription.address)
        if subscription.channel in UNSUBSCRIBABLE
        else None
    )
    prepared = _prepared(batch.items[0].payload) if batch.channel == "digest" else None
    findings = () if prepared else tuple(finding_alert(i.payload, links) for i in batch.items)
    return Alert(
        message_id=batch.batch_key,
        recipient=subscription.address,
        subscription_id=subscription.id,
        artist=subscription.artist,
        findings=tuple(sorted(findings, key=lambda f: -f.score)),
        created_at=batch.created_at,
        unsubscribe_url=unsubscribe,
        prepared=prepared,
    )


def _prepared(payload: Mapping[str, Any]) -> PreparedMessage:
    return PreparedMessage(
        subject=str(payload.get("subject", "stylewatch digest")),
        text=str(payload.get("text", "")),
        html=str(payload.get("html", "")),
    )


def finding_alert(payload: Mapping[str, Any], links: Links) -> FindingAlert:
    """Read a snapshot tolerantly: a missing field becomes a neutral value."""
    finding_id = payload.get("finding_id")
    evidence = payload.get("evidence")
    return FindingAlert(
        finding_id=finding_id if isinstance(finding_id, int) else None,
        artist=str(payload.get("artist", "")),
        score=float(payload.get("score", 0.0)),
        stage=str(payload.get("stage", "")),
        source=str(payload.get("source", "")),
        upload_id=str(payload.get("upload_id", "")),
        name=str(payload.get("name", "")),
        upload_url=_str_or_none(payload.get("upload_url")),
        finding_url=links.finding(finding_id) if isinstance(finding_id, int) else None,
        evidence=tuple(
            EvidenceLine(str(e.get("source", "")), str(e.get("text", "")))
            for e in (evidence if isinstance(evidence, list) else [])
            if isinstance(e, dict)
        ),
        evidence_more=more if isinstance(more := payload.get("evidence_more"), int) else 0,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
