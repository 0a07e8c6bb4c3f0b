"""What the finding page says about the probe: that it ran, is waiting, failed, or why it
never will (the moderator weighs metadata evidence alone differently)."""

from __future__ import annotations

from collections.abc import Collection

from storage.probe_jobs import (
    OVER_BUDGET,
    PROBE_ASKED,
    PROBED_KINDS,
    SKIPPED_SOURCES,
    WAITING_STATES,
)
from storage.web_queries import FindingView


def probe_status(view: FindingView, families: Collection[str]) -> str:
    """One line: the probe's part in this finding, or why it had none."""
    upload = view.upload
    if any(e.source == "style" for e in view.evidence):
        return "ran: the style evidence below is the probe's"
    if upload.state == "probed":
        return "ran: the LoRA's images did not lift this artist's style past the threshold"
    if over_budget(view):
        return upload.error or ""
    if upload.state == "failed":
        return f"failed: {upload.error or 'no reason was recorded'}"
    if upload.source in SKIPPED_SOURCES:
        return "not run here: `stylewatch scan` probes local files when it is asked to"
    if upload.kind not in PROBED_KINDS:
        return f"not run: only LoRAs and checkpoints are probed, and this upload is a {upload.kind}"
    if upload.base_family not in families:
        configured = ", ".join(sorted(families)) or "none"
        return (
            f"not run: no base model configured for {upload.base_family}"
            f" ([probe] base_models has {configured})"
        )
    if upload.state in WAITING_STATES and (upload.error or "").startswith(PROBE_ASKED):
        return f"waiting: {upload.error}"
    if upload.state in WAITING_STATES:
        return "waiting: the probe will run on this upload's file"
    return f"not run (upload state {upload.state})"


def over_budget(view: FindingView) -> bool:
    """Whether the upload is a checkpoint left unprobed by the size budget (a moderator may
    queue it for a probe from the finding)."""
    upload = view.upload
    return upload.state == "failed" and (upload.error or "").startswith(OVER_BUDGET)
