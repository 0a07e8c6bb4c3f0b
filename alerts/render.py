"""Messages from templates: a text part and an HTML part with its CSS inlined (mail
clients drop <style> blocks), both from the jinja2 templates in ``alerts/templates``.

Only HTML templates autoescape; hub text (names, evidence) is untrusted and goes in as data.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from alerts.base import Alert, PreparedMessage

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
MAX_SUBJECT_CHARS = 150


class MessageRenderer:
    """Renders the named template pair (``NAME.txt``, ``NAME.html``) into a message."""

    def __init__(self, base_url: str | None = None) -> None:
        self._base_url = base_url
        self._env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._inliner = css_inline.CSSInliner(keep_style_tags=False)

    @cached_property
    def _css(self) -> str:
        return (TEMPLATES_DIR / "style.css").read_text(encoding="utf-8")

    def render(self, name: str, subject: str, **context: Any) -> PreparedMessage:
        subject = " ".join(subject.split())[:MAX_SUBJECT_CHARS]
        context = {
            "subject": subject,
            "base_url": self._base_url,
            "unsubscribe_url": None,
            **context,
        }
        text = self._env.get_template(f"{name}.txt").render(context)
        html = self._env.get_template(f"{name}.html").render(context, css=self._css)
        return PreparedMessage(subject=subject, text=text, html=self._inliner.inline(html))

    def alert(self, alert: Alert) -> PreparedMessage:
        """The message for a batch of findings (or the alert's prepared one)."""
        if alert.prepared is not None:
            return alert.prepared
        count = len(alert.findings)
        if alert.artist is not None:
            whose = f"{alert.artist}'s"
            heading = (
                f"An upload may imitate {alert.artist}'s style"
                if count == 1
                else f"{count} uploads may imitate {alert.artist}'s style"
            )
        else:
            whose = "registered artists'"
            heading = f"{count} new finding{'s' if count != 1 else ''} for review"
        return self.render(
            "alert",
            f"stylewatch: {heading}",
            heading=heading,
            whose=whose,
            findings=alert.findings,
            unsubscribe_url=alert.unsubscribe_url,
        )
