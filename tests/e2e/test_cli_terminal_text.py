"""Hub text with terminal control codes never reaches the terminal raw (issue #20)."""

from __future__ import annotations

import json

from tests.e2e.test_cli import run
from tests.e2e.test_scan_malformed import write_lora

COMMENT = (
    "quellbrook style \x1b[2J\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 \u202egnp.exe \x9b31m"
)
RAW = ("\x1b", "\x07", "\u202e", "\x9b")


def test_scan_and_findings_print_control_codes_visibly(tmp_path):
    assert run(tmp_path, "artist", "add", "Mara Quellbrook").returncode == 0
    lora = write_lora(tmp_path, "hostile.safetensors", ss_training_comment=COMMENT)
    scan = run(tmp_path, "scan", str(lora), "--no-probe")
    findings = run(tmp_path, "findings")
    uploads = run(tmp_path, "uploads")
    for result in (scan, findings, uploads):
        assert not [code for code in RAW if code in result.stdout + result.stderr]
    assert scan.returncode == 1 and "\\x1b[2J" in scan.stdout and "\\u202e" in scan.stdout
    assert "\\x1b]8;;http://evil.example\\x07" in findings.stdout


def test_json_output_escapes_them_and_keeps_the_text(tmp_path):
    assert run(tmp_path, "artist", "add", "Mara Quellbrook").returncode == 0
    lora = write_lora(tmp_path, "hostile.safetensors", ss_training_comment=COMMENT)
    scan = run(tmp_path, "scan", str(lora), "--no-probe", "--json")
    findings = run(tmp_path, "findings", "--json")
    for result in (scan, findings):
        assert not [code for code in RAW if code in result.stdout]
    texts = [e["text"] for f in json.loads(scan.stdout)["findings"] for e in f["evidence"]]
    assert any("\x1b[2J" in text and "\u202e" in text for text in texts)
