"""Webhook bodies: the Standard Webhooks JSON event, Slack and Discord messages.

Hub text is untrusted: Slack's mrkdwn control characters (& < >) are escaped, and Discord
messages allow no mentions at all (``allowed_mentions: {"parse": []}``) besides escaping
markdown, so an upload called "@everyone" pings nobody.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from alerts.base import Alert, FindingAlert

Format = Literal["standard", "slack", "discord"]
EVENT_TYPE = "finding.created"
DISCORD_MAX_CHARS = 2000
SLACK_MAX_FINDINGS = 20
_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]()@<:-])")


def body_for(format: Format, alert: Alert) -> dict[str, Any]:
    if format == "slack":
        return slack_body(alert)
    if format == "discord":
        return discord_body(alert)
    return standard_body(alert)


def standard_body(alert: Alert) -> dict[str, Any]:
    return {
        "type": EVENT_TYPE,
        "timestamp": alert.created_at.isoformat(),
        "data": {
            "message_id": alert.message_id,
            "artist": alert.artist,
            "findings": [_finding_json(f) for f in alert.findings],
        },
    }


def _finding_json(f: FindingAlert) -> dict[str, Any]:
    return {
        "finding_id": f.finding_id,
        "artist": f.artist,
        "score": f.score,
        "stage": f.stage,
        "source": f.source,
        "upload_id": f.upload_id,
        "name": f.name,
        "upload_url": f.upload_url,
        "finding_url": f.finding_url,
        "evidence": [{"source": e.source, "text": e.text} for e in f.evidence],
    }


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(alert: Alert) -> dict[str, Any]:
    lines = [f"*stylewatch*: {len(alert.findings)} new finding(s)"]
    for f in alert.findings[:SLACK_MAX_FINDINGS]:
        name = slack_escape(f.name)
        label = f"<{f.finding_url}|{name}>" if f.finding_url else name
        lines.append(
            f"• {label} on {slack_escape(f.source)}: {slack_escape(f.artist)}, score {f.score:.2f}"
        )
    return {"text": "\n".join(lines), "mrkdwn": True}


def discord_escape(text: str) -> str:
    return _DISCORD_MARKDOWN.sub(r"\\\1", text)


def discord_body(alert: Alert) -> dict[str, Any]:
    lines = [f"**stylewatch**: {len(alert.findings)} new finding(s)"]
    for f in alert.findings:
        line = (
            f"- {discord_escape(f.name)} on {discord_escape(f.source)}: "
            f"{discord_escape(f.artist)}, score {f.score:.2f}"
        )
        if f.finding_url:
            line += f" <{f.finding_url}>"
        lines.append(line)
    content = "\n".join(lines)
    if len(content) > DISCORD_MAX_CHARS:
        content = content[: DISCORD_MAX_CHARS - 1] + "…"
    return {"content": content, "allowed_mentions": {"parse": []}}
