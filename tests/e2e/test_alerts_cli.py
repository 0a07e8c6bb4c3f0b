"""Alerts through the CLI, as an operator runs it: scan a file naming a subscribed artist,
deliver once, and exactly one email reaches the local SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.alertsinks import smtp_server
from tests.modelfiles import fixture_bytes

BIN = Path(sys.executable).parent / "stylewatch"


def run(
    tmp_path: Path, port: int, *args: str, email: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env |= {
        "STYLEWATCH_DATA_DIR": str(tmp_path / "data"),
        "STYLEWATCH_ALERTS__BATCH_WINDOW_S": "0",
        "STYLEWATCH_ALERTS__EMAIL__ENABLED": "true" if email else "false",
        "STYLEWATCH_ALERTS__EMAIL__SMTP_HOST": "127.0.0.1",
        "STYLEWATCH_ALERTS__EMAIL__SMTP_PORT": str(port),
        "STYLEWATCH_ALERTS__EMAIL__STARTTLS": "false",
        "STYLEWATCH_WEB__BASE_URL": "https://sw.example.org",
        "STYLEWATCH_HUB_HISTORY__ENABLED": "false",  # `artist add` stays off the real hubs
    }
    return subprocess.run(
        [str(BIN), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_scan_to_inbox_exactly_once(tmp_path):
    lora = tmp_path / "quellbrook_style_v1.safetensors"
    lora.write_bytes(fixture_bytes("kohya_sd15_style_lora"))
    with smtp_server() as (sink, port):
        assert run(tmp_path, port, "artist", "add", "Mara Quellbrook").returncode == 0
        sub = run(tmp_path, port, "subscribe", "Mara Quellbrook", "--email", "mara@example.org")
        assert sub.returncode == 0, sub.stderr
        link = next(w for w in sub.stdout.split() if "/subscriptions/confirm/" in w)
        assert [m["Subject"] for m in sink.messages] == ["stylewatch: confirm your subscription"]
        assert run(tmp_path, port, "confirm", link).returncode == 0
        assert run(tmp_path, port, "scan", str(lora)).returncode == 1
        first = run(tmp_path, port, "deliver", "--once")
        assert first.returncode == 0, first.stderr
        assert "1 sent" in first.stdout
        assert run(tmp_path, port, "deliver", "--once").stdout.startswith("0 sent")
        assert run(tmp_path, port, "scan", str(lora)).returncode == 1  # a rescan: no news
        run(tmp_path, port, "deliver", "--once")
        alerts = sink.messages[1:]
        assert len(alerts) == 1 and alerts[0]["To"] == "mara@example.org"
        assert "Mara Quellbrook" in alerts[0]["Subject"]
        preview = run(tmp_path, port, "digest", "--preview", "--artist", "Mara Quellbrook")
        assert preview.returncode == 0, preview.stderr
        assert "quellbrook_style_v1.safetensors" in preview.stdout
        assert list((tmp_path / "data" / "digests").glob("*-mara-quellbrook.html"))
        body = alerts[0].get_body(("plain",))
        assert body is not None and "/findings/" in body.get_content()


def test_digest_send_says_what_it_sent(tmp_path):
    """`digest --send` delivers now and says so; a second run that week sends nothing."""
    lora = tmp_path / "quellbrook_style_v1.safetensors"
    lora.write_bytes(fixture_bytes("kohya_sd15_style_lora"))
    with smtp_server() as (sink, port):
        assert run(tmp_path, port, "artist", "add", "Mara Quellbrook").returncode == 0
        sub = run(
            tmp_path, port, "subscribe", "Mara Quellbrook", "--email", "mara@example.org",
            "--digest", "--confirmed",
        )  # fmt: skip
        assert sub.returncode == 0, sub.stderr
        assert run(tmp_path, port, "scan", str(lora)).returncode == 1
        sent = run(tmp_path, port, "digest", "--send")
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "1 digest queued; 1 message sent"
        assert [m["To"] for m in sink.messages] == ["mara@example.org"]
        body = sink.messages[0].get_body(("plain",))
        assert body is not None and "quellbrook_style_v1.safetensors" in body.get_content()
        again = run(tmp_path, port, "digest", "--send")
        assert again.stdout.startswith("no digests to send"), again.stdout
        assert "0 messages sent" in again.stdout and len(sink.messages) == 1


def test_digest_send_with_email_off_says_none_went_out(tmp_path):
    lora = tmp_path / "quellbrook_style_v1.safetensors"
    lora.write_bytes(fixture_bytes("kohya_sd15_style_lora"))
    with smtp_server() as (sink, port):
        assert run(tmp_path, port, "artist", "add", "Mara Quellbrook").returncode == 0
        args = ("Mara Quellbrook", "--email", "mara@example.org", "--digest", "--confirmed")
        assert run(tmp_path, port, "subscribe", *args).returncode == 0
        assert run(tmp_path, port, "scan", str(lora)).returncode == 1
        sent = run(tmp_path, port, "digest", "--send", email=False)
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("1 digest queued, none sent: email is off"), sent.stdout
        assert sink.messages == []
