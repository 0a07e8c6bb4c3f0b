"""``stylewatch scan`` refuses files whose metadata no trainer writes, with a reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.e2e.test_cli import run
from tests.modelfiles import fixture_header, materialise


def write_lora(tmp_path: Path, name: str, **metadata: Any) -> Path:
    header = copy.deepcopy(fixture_header("kohya_sd15_style_lora"))
    header["__metadata__"].update(metadata)
    path = tmp_path / name
    path.write_bytes(materialise(header))
    return path


def test_non_string_metadata_is_malformed_not_clean(tmp_path):
    lora = write_lora(tmp_path, "odd.safetensors", ss_epoch=10)
    result = run(tmp_path, "scan", str(lora), "--json", "--no-probe")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["verdict"] == "malformed"
    assert report["malformed"] == "__metadata__ 'ss_epoch' is a number, not a string"
    assert report["kind"] == "lora"
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "malformed metadata" in line
    uploads = json.loads(run(tmp_path, "uploads", "--json").stdout)
    assert uploads[0]["malformed"].endswith("'ss_epoch' is a number, not a string")


def test_deeply_nested_tag_frequency_is_malformed(tmp_path):
    deep = "[" * 10_000 + "]" * 10_000
    lora = write_lora(tmp_path, "deep.safetensors", ss_tag_frequency=deep)
    result = run(tmp_path, "scan", str(lora), "--json", "--no-probe")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["verdict"] == "malformed"
    assert "nests deeper than the 16-level cap" in report["malformed"]
    assert "Traceback" not in result.stderr


def test_a_flagged_file_stays_flagged_and_says_it_is_malformed(tmp_path):
    assert run(tmp_path, "artist", "add", "Mara Quellbrook").returncode == 0
    lora = write_lora(tmp_path, "odd.safetensors", ss_epoch=10)
    result = run(tmp_path, "scan", str(lora), "--json", "--no-probe")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "flagged"
    assert report["malformed"] is not None


def test_a_well_formed_file_has_no_reason(tmp_path):
    lora = write_lora(tmp_path, "fine.safetensors")
    result = run(tmp_path, "scan", str(lora), "--json", "--no-probe")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["malformed"] is None


def test_a_header_over_the_read_cap_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.safetensors"
    header = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    header += b" " * (40 * 1024 * 1024 - len(header))
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    result = run(tmp_path, "scan", str(path), "--no-probe")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: huge.safetensors: a ") and "over the 32 MB read cap" in line


def test_scan_records_a_capped_copy_of_huge_metadata(tmp_path):
    lora = write_lora(tmp_path, "big.safetensors", ss_comment="c" * 1_000_000)
    assert run(tmp_path, "scan", str(lora), "--no-probe").returncode in (0, 1)
    (upload,) = json.loads(run(tmp_path, "uploads", "--json").stdout)
    (cut,) = [f["metadata_cut"] for f in upload["files"]]
    assert cut["dropped_keys"] == 1 and cut["full_chars"] > 1_000_000
