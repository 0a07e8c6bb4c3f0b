"""monitor.pipeline: one upload's way through stylewatch, one module per stage::

    poll ──▶ screen ──▶ probe ──▶ score ──▶ record ──▶ alert
     │          │         │         │          │          │
     │          │         │         │          │          └ alert: outbox → email, webhooks,
     │          │         │         │          │            the weekly digest
     │          │         │         │          └ record: uploads, findings, re-upload links
     │          │         │         └ score: lifts at the threshold → findings + evidence sheet
     │          │         └ probe: the LoRA drawn on its base model (probe, probe_worker)
     │          └ screen: header and hub text against every artist's names (and ``scan``)
     └ poll: list what is new on a hub, hydrate it, read each header

The poll → probe hand-off is ``Upload.state`` (new → screened → probing → probed, and back
to the queue on a retry or a back-scan); `states` declares which stage may move an upload
where, and every stage moves it through `states.move`. `takedown` follows a confirmed
finding's upload afterwards (still up on its hub, or taken down).

The pure work of each stage is in detectors/ (screening, the probe, the style lift); what is
stored, in storage/; the messages, in alerts/. The stages here join them.
"""

from __future__ import annotations

# Its modules (imported on use, not here).
__all__ = [
    "alert",
    "poll",
    "probe",
    "probe_worker",
    "record",
    "score",
    "screen",
    "states",
    "takedown",
]
