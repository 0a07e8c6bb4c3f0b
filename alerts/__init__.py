"""Alert delivery: the outbox, channels (email, webhooks) and the weekly digest."""

from __future__ import annotations
