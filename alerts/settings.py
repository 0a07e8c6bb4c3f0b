"""The settings sections the alert channels read: ``[alerts.email]`` and ``[[alerts.webhooks]]``.

They live here, not in monitor.settings, so that alerts/ depends on nothing of monitor/
(monitor.settings builds its ``[alerts]`` section from them). ``Section`` is the base of
every settings section: unknown keys are refused and a section never changes once built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from alerts.webhook_signature import signing_key

__all__ = ["EmailSettings", "Section", "WebhookSettings"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailSettings(Section):
    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = "stylewatch@localhost"
    tls: bool = False  # implicit TLS (usually port 465); starttls is then not used
    timeout_s: float = Field(default=30.0, gt=0, description="seconds per SMTP operation")


class WebhookSettings(Section):
    url: str
    secret: SecretStr | None = None
    format: Literal["standard", "slack", "discord"] = "standard"
    events: list[str] = Field(default_factory=lambda: ["finding.created"])
    # Destinations resolving to private (RFC 1918, ULA) or loopback addresses are refused
    # unless allowed here (link-local, multicast and reserved ones always are).
    allow_private: bool = False
    allow_loopback: bool = False
    timeout_s: float = Field(default=10.0, gt=0, description="seconds per delivery")

    @field_validator("secret")
    @classmethod
    def _usable_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty HMAC key signs every body with a key anyone knows: receivers would
        # accept forgeries. No secret at all is the honest way to send unsigned.
        if value is not None and not signing_key(value.get_secret_value()).strip():
            raise ValueError("is empty: set a random string (or whsec_<base64>), or leave it out")
        return value
