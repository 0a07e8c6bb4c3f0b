"""The `Channel` port and the values a channel delivers.

A channel gets one `Alert` (one message: one or many findings for one subscriber, or a
ready-made digest) and either delivers it or raises one of the errors below; the
dispatcher decides from the class whether to retry, dead-letter or disable the endpoint.
``Alert.message_id`` is stable across retries: channels put it where the receiver can
drop a duplicate (Message-ID, webhook-id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from detectors.errors import DeliveryError


class DeliveryFailed(DeliveryError):
    """Transient: try again later (timeouts, refused connections, 5xx, redirects)."""


class DeliveryRejected(DeliveryError):
    """Permanent for this message: dead-letter it now (recipient refused, bad address)."""


class EndpointGone(DeliveryRejected):
    """The endpoint said it is gone for good (HTTP 410): disable its subscription."""


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    source: str
    text: str

    @property
    def label(self) -> str:
        """Where the line was found, in words a reader who never trained a LoRA follows
        (``ss_tag_frequency`` is "training captions"); unknown fields keep their key."""
        return EVIDENCE_LABELS.get(self.source, self.source)


EVIDENCE_LABELS = {
    "ss_tag_frequency": "training captions",
    "ss_datasets": "training captions",
    "ss_dataset_dirs": "training folders",
    "ss_output_name": "file's own name",
    "ss_training_comment": "trainer's comment",
    "modelspec.title": "model title",
    "modelspec.trigger_phrase": "trigger words",
    "modelspec.description": "model description",
    "modelspec.tags": "model tags",
    "trainedWords": "trigger words",
    "name": "title on the hub",
    "title": "title on the hub",
    "description": "description on the hub",
    "tags": "tags on the hub",
    "card": "model card",
    "style": "style probe (images it draws)",
}


@dataclass(frozen=True, slots=True)
class FindingAlert:
    """One finding inside a message, as it was when it was found."""

    finding_id: int | None
    artist: str
    score: float
    stage: str
    source: str
    upload_id: str
    name: str
    upload_url: str | None
    finding_url: str | None
    evidence: tuple[EvidenceLine, ...]
    evidence_more: int = 0  # lines left out of the message (the evidence page has them all)

    @property
    def where(self) -> str:
        """Where the upload is, in words: "on Civitai", "in a watched folder"."""
        return WHERE.get(self.source, f"on {self.source}")

    @property
    def hub_url(self) -> str | None:
        """The upload's page on its hub; never a local path (a folder upload's file:// URL
        names a path on the server, which no reader can open and none should see)."""
        url = self.upload_url
        return url if url is not None and url.startswith(("https://", "http://")) else None


WHERE = {
    "civitai": "on Civitai",
    "huggingface": "on Hugging Face",
    "folder": "in a watched folder",
}


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A message rendered ahead of time (digests, confirmations)."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to one subscriber. ``findings`` is empty when ``prepared`` is set."""

    message_id: str
    recipient: str
    subscription_id: int
    artist: str | None
    findings: tuple[FindingAlert, ...]
    created_at: datetime
    unsubscribe_url: str | None = None
    prepared: PreparedMessage | None = None


class Channel(Protocol):
    """Delivers alerts over one medium (email, webhooks)."""

    async def send(self, alert: Alert) -> None:
        """Deliver ``alert`` once. Raises `DeliveryFailed` (retry later),
        `DeliveryRejected` (never retry) or `EndpointGone` (disable the subscription);
        no other exception leaves a channel."""
        ...
