"""The email channel: one multipart (text + HTML) message per alert, over SMTP with
aiosmtplib (STARTTLS, or implicit TLS, as ``[alerts.email]`` says).

Headers: a Message-ID derived from the alert's stable id (a resend after a crash carries
the same one), Auto-Submitted: auto-generated, and for subscribers a List-Unsubscribe URL
with List-Unsubscribe-Post (RFC 8058 one-click). Evidence is linked, never attached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from alerts.base import Alert, DeliveryFailed, DeliveryRejected
from alerts.render import MessageRenderer
from alerts.settings import EmailSettings

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def message_id(alert_id: str, from_addr: str) -> str:
    """``<alert_id.stylewatch@domain-of-from_addr>``: the same for every try of a message."""
    domain = from_addr.rsplit("@", 1)[-1].strip("<> ") or "localhost"
    return f"<{alert_id}.stylewatch@{domain}>"


class EmailChannel:
    """Sends alerts as email through one SMTP server."""

    def __init__(
        self,
        settings: EmailSettings,
        renderer: MessageRenderer,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._clock = clock

    def build(self, alert: Alert) -> EmailMessage:
        """The message as it will be sent (also what previews and tests look at)."""
        rendered = self._renderer.alert(alert)
        message = EmailMessage()
        message["From"] = self._settings.from_addr
        message["To"] = alert.recipient
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = message_id(alert.message_id, self._settings.from_addr)
        message["Auto-Submitted"] = "auto-generated"
        if alert.unsubscribe_url is not None:
            message["List-Unsubscribe"] = f"<{alert.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    async def send(self, alert: Alert) -> None:
        message = self.build(alert)
        settings = self._settings
        password = settings.password.get_secret_value() if settings.password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.username,
                password=password,
                use_tls=settings.tls,
                start_tls=settings.starttls and not settings.tls,
                timeout=settings.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryRejected(f"the mail server refused {alert.recipient}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            where = f"{settings.smtp_host}:{settings.smtp_port}"
            raise DeliveryFailed(f"cannot send mail through {where}: {_reason(exc)}") from exc
        log.info(
            "alerts.email.sent",
            extra={"message_id": alert.message_id, "artist": alert.artist},
        )


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:200]
