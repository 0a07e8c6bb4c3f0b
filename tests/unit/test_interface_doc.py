"""docs/interface.md is true to the code, both ways.

Every `stylewatch …` span the document shows names a real command and only its real
options; every command and option the CLI has is shown in the command table. Every
configuration key the document lists is a setting, and every setting is listed there and
in config.example.toml. Every JSON example has exactly the keys the command prints.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args, get_origin

import typer
from pydantic import BaseModel

from detectors.results import ArtistMatch, Evidence
from monitor.cli.main import app
from monitor.interface.json_views import flagged_uploads_json, upload_json
from monitor.interface.scan_report import ScanFailure, ScanReport
from monitor.settings import Settings
from storage.records import FileRecord, FindingRecord, UploadRecord, UploadRef
from storage.takedowns import HubCheckRecord

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "interface.md"
EXAMPLE = ROOT / "config.example.toml"


@dataclass
class _Command:
    options: set[str] = field(default_factory=set)  # every spelling: --hubs and --no-hubs
    primary: set[str] = field(default_factory=set)  # one spelling per option


def _cli_tree() -> tuple[set[str], dict[tuple[str, ...], _Command]]:
    root = typer.main.get_command(app)
    global_options = {o for p in root.params for o in (*p.opts, *p.secondary_opts)}
    leaves: dict[tuple[str, ...], _Command] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
            return
        entry = leaves[path] = _Command()
        for param in command.params:
            spellings = [o for o in (*param.opts, *param.secondary_opts) if o.startswith("-")]
            if spellings:
                entry.options.update(spellings)
                entry.primary.add(spellings[0])

    walk(root, ())
    return global_options, leaves


def _doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def _command_spans(text: str) -> Iterator[str]:
    for span in re.findall(r"`([^`\n]+)`", text):
        if span == "stylewatch" or span.startswith("stylewatch "):
            yield span.replace("\\|", "|")


_OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z0-9-]*)")


def _parse_span(
    span: str, global_options: set[str], leaves: dict[tuple[str, ...], _Command]
) -> tuple[tuple[str, ...], set[str]]:
    """The command path a span names and the options it shows (global ones dropped)."""
    words = span.split()[1:]
    while words and words[0].startswith("-"):  # global options before the command
        option = words.pop(0)
        assert option in global_options, f"{span!r}: {option} is not a global option"
        if option in ("--config", "--data-dir") and words:
            words.pop(0)  # its value
    path: tuple[str, ...] = ()
    groups = {p[:i] for p in leaves for i in range(len(p))}
    for word in words:
        if (*path, word) in leaves or (*path, word) in groups:
            path = (*path, word)
        else:
            break
    rest = " ".join(words[len(path) :])
    return path, set(_OPTION.findall(rest))


def test_every_command_span_names_a_real_command_and_its_real_options() -> None:
    global_options, leaves = _cli_tree()
    groups = {p[:i] for p in leaves for i in range(len(p))}
    spans = list(_command_spans(_doc_text()))
    assert len(spans) > 20
    for span in spans:
        path, options = _parse_span(span, global_options, leaves)
        words = span.split()[1:]
        if path in groups and path not in leaves:
            # `stylewatch` alone, `stylewatch --config FILE`, `stylewatch artist …` prose
            tail = [w for w in words[len(path) :] if not w.startswith("-")]
            assert not tail or tail[0].isupper(), f"{span!r}: {tail[0]!r} is not a command"
            extra = options - global_options - {"--help"}
            assert not extra, f"{span!r}: {extra}"
            continue
        allowed = leaves[path].options | global_options | {"--help"}
        extra = options - allowed
        assert not extra, f"{span!r}: `stylewatch {' '.join(path)}` has no {extra}"


def test_every_command_and_option_is_in_the_command_table() -> None:
    global_options, leaves = _cli_tree()
    table = _doc_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    shown: dict[tuple[str, ...], set[str]] = {}
    for line in table.splitlines():
        if not line.startswith("| `stylewatch"):
            continue
        span = next(_command_spans(line.split(" | ")[0]))
        path, options = _parse_span(span, global_options, leaves)
        assert path in leaves, f"table row {span!r} is not a command"
        shown.setdefault(path, set()).update(options)
    missing_commands = sorted(" ".join(p) for p in leaves if p not in shown)
    assert not missing_commands, f"commands not in docs/interface.md: {missing_commands}"
    for path, command in leaves.items():
        # an option counts as shown under any of its spellings (--hubs/--no-hubs)
        missing = {o for o in command.primary if not _spelled(o, command, shown[path])}
        assert not missing, f"`stylewatch {' '.join(path)}` options not documented: {missing}"


def _spelled(option: str, command: _Command, shown: set[str]) -> bool:
    if option in shown:
        return True
    negated = "--no-" + option.removeprefix("--")
    return negated in command.options and negated in shown


def _settings_keys(model: type[BaseModel], section: str = "") -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _settings_keys(annotation, f"{section}.{name}".lstrip("."))
            continue
        args = get_args(annotation)
        if get_origin(annotation) is list and args and issubclass(args[0], BaseModel):
            keys |= _settings_keys(args[0], f"{section}.{name}".lstrip("."))
            continue
        keys.add((section, name))
    return keys


def _doc_config_keys(text: str) -> set[tuple[str, str]]:
    part = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    keys: set[tuple[str, str]] = set()
    section: str | None = None
    for line in part.splitlines():
        heading = re.fullmatch(r"### `\[\[?([a-z_.]+)\]\]?`", line)
        if heading:
            section = heading.group(1)
        elif line == "### Top level":
            section = ""
        row = re.match(r"\| `([a-z_]+)` \|", line)
        if row and section is not None:
            keys.add((section, row.group(1)))
    return keys


def _example_keys(text: str) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    section = ""
    for line in text.splitlines():
        stripped = line.lstrip("# ").rstrip()
        header = re.fullmatch(r"\[\[?([a-z_.]+)\]\]?", stripped)
        if header:
            section = header.group(1)
            continue
        key = re.match(r"([a-z_]+) = ", stripped)
        if key and line.startswith("#"):
            keys.add((section, key.group(1)))
    return keys


def test_config_keys_in_the_doc_are_exactly_the_settings() -> None:
    documented = _doc_config_keys(_doc_text())
    real = _settings_keys(Settings)
    assert len(real) > 70
    assert documented - real == set(), "documented but not settings"
    assert real - documented == set(), "settings not in docs/interface.md"


def test_config_example_names_every_setting() -> None:
    example = _example_keys(EXAMPLE.read_text(encoding="utf-8"))
    real = _settings_keys(Settings)
    assert real - example == set(), "settings without a line in config.example.toml"


def _doc_json(heading: str) -> Any:
    text = _doc_text()
    part = text.split(f"### `{heading}`", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```json\n(.*?)\n```", part, re.S)
    assert block, f"no JSON example under {heading}"
    return json.loads(block.group(1))


def _same_keys(doc: Any, real: Any, where: str = "") -> None:
    """The same keys at every level (the first element of arrays stands for all)."""
    if isinstance(real, dict):
        assert isinstance(doc, dict), where
        assert set(doc) == set(real), f"{where}: doc {sorted(doc)} vs code {sorted(real)}"
        for key in real:
            if real[key] is not None and doc[key] is not None:
                _same_keys(doc[key], real[key], f"{where}.{key}")
    elif isinstance(real, list) and real:
        assert isinstance(doc, list) and doc, where
        _same_keys(doc[0], real[0], f"{where}[]")


_NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
_EVIDENCE = (Evidence("ss_tag_frequency", "by mara quellbrook"),)
# Name screening's evidence: the rule that fired, its confidence and why.
_SCREENED = Evidence(
    "ss_tag_frequency", "by mara quellbrook", rule="full_name", confidence=0.97, why="whole name"
)


def _upload() -> UploadRecord:
    return UploadRecord(
        id=1,
        source="civitai",
        upload_id="4417",
        name="Quellbrook style",
        state="screened",
        kind="lora",
        base_family="sd1",
        artists=("Mara Quellbrook",),
        reupload_of=UploadRef("huggingface", "someone/quellbrook"),
        url="https://civitai.com/models/311?modelVersionId=4417",
        uploader="someone",
        error=None,
        hub_text=(),
        files=(FileRecord("quellbrook.safetensors", size=1234, kind="lora", fingerprint="read"),),
        created_at=_NOW,
        updated_at=_NOW,
    )


def test_scan_json_example_has_the_report_keys() -> None:
    report = ScanReport(
        target="quellbrook_style_v1.safetensors",
        sha256="0" * 64,
        size=1234,
        format="safetensors",
        kind="lora",
        base_family="sd1",
        matches=(ArtistMatch(1, "Mara Quellbrook", 0.97, "metadata", (_SCREENED,)),),
        verdict_threshold=0.5,
        probe_ran=False,
        probe_reason="no base model configured for sd1",
        malformed="ss_num_epochs is a number, not a string",
    )
    _same_keys(_doc_json("scan --json"), report.to_json(), "scan")
    failure = ScanFailure("x.ckpt", "refused", "pickle").to_json()
    assert '{"target", "format", "error"}' in _doc_text()
    assert set(failure) == {"target", "format", "error"}


def test_uploads_json_example_has_the_upload_keys() -> None:
    _same_keys(_doc_json("uploads --json"), [upload_json(_upload())], "uploads")


def test_findings_json_example_has_the_finding_keys() -> None:
    finding = FindingRecord(
        id=1,
        upload_pk=1,
        source="civitai",
        upload_id="4417",
        name="Quellbrook style",
        artist_id=1,
        artist="Mara Quellbrook",
        score=0.97,
        stage="metadata",
        state="needs_review",
        backscan=False,
        evidence=_EVIDENCE,
        created_at=_NOW,
        updated_at=_NOW,
    )
    check = HubCheckRecord(1, True, "up", None, _NOW, None)
    real = flagged_uploads_json([finding], {1: check})
    _same_keys(_doc_json("findings --json"), real, "findings")
