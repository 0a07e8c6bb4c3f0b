"""The ``stylewatch`` command run in a subprocess, as a user runs it."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.modelfiles import fixture_bytes

BIN = Path(sys.executable).parent / "stylewatch"


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STYLEWATCH_")}
    env["STYLEWATCH_DATA_DIR"] = str(tmp_path / "data")
    env["STYLEWATCH_HUB_HISTORY__ENABLED"] = "false"  # `artist add` stays off the real hubs
    return subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
        check=False,
    )


@pytest.fixture
def lora(tmp_path: Path) -> Path:
    path = tmp_path / "quellbrook_style_v1.safetensors"
    path.write_bytes(fixture_bytes("kohya_sd15_style_lora"))
    return path


def test_scan_flags_a_registered_artist_with_evidence(tmp_path, lora):
    added = run(
        tmp_path,
        "artist",
        "add",
        "Mara Quellbrook",
        "--alias",
        "quellbrook",
        "--email",
        "mara@example.org",
    )
    assert added.returncode == 0, added.stderr
    result = run(tmp_path, "scan", str(lora), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "flagged"
    assert (report["format"], report["kind"], report["base_family"]) == (
        "safetensors",
        "lora",
        "sd1",
    )
    assert report["size"] == lora.stat().st_size
    assert len(report["sha256"]) == 64
    finding = report["findings"][0]
    assert finding["artist"] == "Mara Quellbrook"
    assert finding["stage"] == "metadata"
    texts = {(e["source"], e["text"]) for e in finding["evidence"]}
    assert ("ss_tag_frequency", "by mara quellbrook") in texts
    assert report["probe"]["ran"] is False


def test_scan_is_clean_without_registered_artists_and_human_output(tmp_path, lora):
    result = run(tmp_path, "scan", str(lora))
    assert result.returncode == 0, result.stderr
    assert "clean" in result.stdout
    assert "Traceback" not in result.stderr


def test_scan_records_uploads_and_findings_once(tmp_path, lora):
    run(tmp_path, "artist", "add", "Mara Quellbrook")
    for _ in range(2):
        assert run(tmp_path, "scan", str(lora)).returncode == 1
    uploads = json.loads(run(tmp_path, "uploads", "--json").stdout)
    assert len(uploads) == 1
    assert uploads[0]["source"] == "local"
    assert uploads[0]["name"] == lora.name
    assert uploads[0]["artists"] == ["Mara Quellbrook"]
    findings = json.loads(run(tmp_path, "findings", "--json").stdout)
    assert len(findings) == 1
    assert findings[0]["artists"] == ["Mara Quellbrook"]


class _OpensAFile:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def _zip_pickle(payload: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


@pytest.mark.parametrize("container", ["raw", "zip"])
def test_a_hostile_pickle_is_refused_and_never_loaded(tmp_path, container):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_OpensAFile(marker), protocol=2)
    data = payload if container == "raw" else _zip_pickle(payload)
    evil = tmp_path / "model.ckpt"
    evil.write_bytes(data)
    result = run(tmp_path, "scan", str(evil))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error:")
    assert "pickle" in lines[0]
    assert not marker.exists()


def _header_file(header: bytes, tail: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header)) + header + tail


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x00\x01", id="too-short"),
        pytest.param(struct.pack("<Q", 10**12) + b"{}", id="huge-length"),
        pytest.param(_header_file(b'{"a": {"dtype": "F32", "sh'), id="truncated-json"),
        pytest.param(
            _header_file(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,1600]}}'),
            id="offsets-out-of-range",
        ),
        pytest.param(_header_file(b"[" * 5000 + b"]" * 5000), id="deep-nesting"),
        pytest.param(b"GIF89a not a model at all", id="not-a-model"),
    ],
)
def test_broken_files_exit_2_with_one_line(tmp_path, data):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data)
    result = run(tmp_path, "scan", str(bad), "--json")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert "Traceback" not in result.stderr


def test_missing_file_is_an_input_error(tmp_path):
    result = run(tmp_path, "scan", str(tmp_path / "nope.safetensors"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:")


def test_folder_scan_summarises_each_file(tmp_path, lora):
    folder = lora.parent
    (folder / "sdxl.safetensors").write_bytes(fixture_bytes("kohya_sdxl_lora"))
    (folder / "old.ckpt").write_bytes(pickle.dumps({"state_dict": {}}, protocol=4))
    run(tmp_path, "artist", "add", "Mara Quellbrook")
    result = run(tmp_path, "scan", str(folder), "--json")
    assert result.returncode == 1, result.stderr
    reports = {Path(r["target"]).name: r for r in json.loads(result.stdout)}
    assert reports[lora.name]["verdict"] == "flagged"
    assert reports["sdxl.safetensors"]["base_family"] == "sdxl"
    assert reports["old.ckpt"]["format"] == "pickle"
    assert "error" in reports["old.ckpt"]
    table = run(tmp_path, "scan", str(folder))
    assert "3 files: 1 flagged, 1 could not be scanned" in table.stdout
    # Rows name each file within the folder, whole: a long name wraps onto the next line
    # (a long path was cut to "/tmp/pytest-…").
    rows = [line for line in table.stdout.splitlines() if line.startswith("│")]
    first_column = "".join(row.split("│")[1].strip() for row in rows)
    for name in (lora.name, "sdxl.safetensors", "old.ckpt"):
        assert name in first_column, table.stdout
    assert "/" not in first_column, table.stdout


def test_artist_import_csv_and_list(tmp_path):
    csv_file = tmp_path / "artists.csv"
    csv_file.write_text(
        "name,aliases,email\n"
        "Mara Quellbrook,quellbrook;m. quellbrook,mara@example.org\n"
        "Oriel Hastmoor,,\n"
    )
    result = run(tmp_path, "artist", "import", str(csv_file))
    assert result.returncode == 0, result.stderr
    assert "2 artists registered" in result.stdout
    assert "back-scan:" in result.stdout
    again = run(tmp_path, "artist", "import", str(csv_file))
    assert again.returncode == 0, again.stderr
    assert "nothing new: 2 artists" in again.stdout
    assert "back-scan" not in again.stdout + again.stderr  # nothing new to look for
    listed = json.loads(run(tmp_path, "artist", "list", "--json").stdout)
    by_name = {a["name"]: a for a in listed}
    assert set(by_name) == {"Mara Quellbrook", "Oriel Hastmoor"}
    assert sorted(by_name["Mara Quellbrook"]["aliases"]) == ["m. quellbrook", "quellbrook"]
    assert by_name["Mara Quellbrook"]["email"] == "mara@example.org"


def test_artist_import_refuses_unknown_columns_and_keys(tmp_path):
    csv_file = tmp_path / "artists.csv"
    csv_file.write_text("name,alias,e-mail\nMara Quellbrook,quellbrook,mara@example.org\n")
    result = run(tmp_path, "artist", "import", str(csv_file))
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unknown columns 'alias', 'e-mail'" in result.stderr
    assert "known: name, aliases, email" in result.stderr
    toml_file = tmp_path / "artists.toml"
    toml_file.write_text('[[artist]]\nname = "Mara Quellbrook"\nalias = ["quellbrook"]\n')
    result = run(tmp_path, "artist", "import", str(toml_file))
    assert result.returncode == 2
    assert "artist #1: unknown key 'alias'" in result.stderr
    listed = json.loads(run(tmp_path, "artist", "list", "--json").stdout)
    assert listed == []  # nothing half-imported


def test_duplicate_artist_is_one_line_error(tmp_path):
    assert run(tmp_path, "artist", "add", "Mara Quellbrook").returncode == 0
    result = run(tmp_path, "artist", "add", "Mara Quellbrook")
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_config_is_one_line_per_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[web]\nport = 'x'\n[nonsense]\na = 1\n")
    result = run(tmp_path, "--config", str(cfg), "artist", "list")
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert "web.port" in result.stderr
    assert "nonsense" in result.stderr


def test_init_and_db_upgrade(tmp_path):
    result = run(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    config = tmp_path / "data" / "config.toml"
    assert config.exists()
    assert "[sources.civitai]" in config.read_text()
    assert (tmp_path / "data" / "stylewatch.db").exists()
    assert run(tmp_path, "init").returncode == 2
    upgraded = run(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "up to date" in upgraded.stdout


def test_artist_remove_says_what_goes_asks_and_keeps_the_uploads(tmp_path, lora):
    assert (
        run(tmp_path, "artist", "add", "Mara Quellbrook", "--alias", "quellbrook").returncode == 0
    )
    subscribed = run(
        tmp_path, "subscribe", "Mara Quellbrook", "--email", "mara@example.org", "--confirmed"
    )
    assert subscribed.returncode == 0, subscribed.stderr
    added = run(
        tmp_path,
        "user",
        "add",
        "mara@example.org",
        "--role",
        "artist",
        "--artist",
        "Mara Quellbrook",
        "--password-stdin",
        stdin="a long enough passphrase\n",
    )
    assert added.returncode == 0, added.stderr
    users = json.loads(run(tmp_path, "user", "list", "--json").stdout)
    assert [(u["email"], u["role"], u["artist"]) for u in users] == [
        ("mara@example.org", "artist", "Mara Quellbrook")
    ]
    assert run(tmp_path, "scan", str(lora)).returncode == 1  # flagged: one finding recorded
    asked = run(tmp_path, "artist", "remove", "Mara Quellbrook")  # stdin is no terminal
    assert asked.returncode == 2
    assert "removes 1 finding, 1 subscription and 0 reference images" in asked.stdout
    assert "1 web user linked to them will keep the account" in asked.stdout
    assert asked.stderr.startswith("error: nothing removed: run again with --yes")
    assert len(json.loads(run(tmp_path, "findings", "--json").stdout)) == 1
    done = run(tmp_path, "artist", "remove", "mara quellbrook", "--yes")
    assert done.returncode == 0, done.stderr
    assert "removed Mara Quellbrook with 1 finding, 1 subscription" in done.stdout
    assert json.loads(run(tmp_path, "artist", "list", "--json").stdout) == []
    assert json.loads(run(tmp_path, "findings", "--json").stdout) == []
    assert json.loads(run(tmp_path, "subscriptions", "--json").stdout) == []
    assert len(json.loads(run(tmp_path, "uploads", "--json").stdout)) == 1  # still recorded
    [user] = json.loads(run(tmp_path, "user", "list", "--json").stdout)
    assert (user["email"], user["artist"]) == ("mara@example.org", None)  # kept, unlinked
    assert "1 user" in run(tmp_path, "user", "list").stdout
    again = run(tmp_path, "artist", "remove", "Mara Quellbrook", "--yes")
    assert again.returncode == 2
    assert again.stderr.startswith("error: no artist 'Mara Quellbrook'")
