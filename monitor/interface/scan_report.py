"""The ``scan --json`` report (docs/interface.md) and its terminal rendering."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from detectors.results import (
    ArtistMatch,
    BaseFamily,
    Evidence,
    FileFormat,
    Kind,
    Verdict,
    merge_matches,
)
from detectors.screening import Screening
from monitor.interface.terminal_text import shown


@dataclass(frozen=True, slots=True)
class ScanReport:
    """One scanned target: what it is, the verdict, the findings, and whether a probe ran.

    ``sha256`` and ``size`` are None for a hub upload whose hub did not give them;
    ``malformed`` says why the file's metadata is malformed (None when it is well formed).
    """

    target: str
    sha256: str | None
    size: int | None
    format: FileFormat
    kind: Kind
    base_family: BaseFamily
    matches: tuple[ArtistMatch, ...]
    verdict_threshold: float
    probe_ran: bool
    probe_reason: str
    malformed: str | None = None

    @classmethod
    def from_screening(
        cls, target: str, sha256: str | None, size: int | None, screening: Screening, **rest: Any
    ) -> ScanReport:
        return cls(
            target=target,
            sha256=sha256,
            size=size,
            format=screening.format,
            kind=screening.kind,
            base_family=screening.base_family,
            matches=screening.matches,
            malformed=screening.malformed,
            **rest,
        )

    @property
    def flagged(self) -> bool:
        return any(m.score >= self.verdict_threshold for m in self.matches)

    @property
    def verdict(self) -> Verdict:
        """Flagged wins; metadata no trainer writes is never called clean."""
        if self.flagged:
            return "flagged"
        return "malformed" if self.malformed else "clean"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "sha256": self.sha256,
            "size": self.size,
            "format": self.format,
            "kind": self.kind,
            "base_family": self.base_family,
            "verdict": self.verdict,
            "malformed": self.malformed,
            "findings": [finding_json(m) for m in sorted_matches(self.matches)],
            "probe": {"ran": self.probe_ran, "reason": self.probe_reason},
        }


@dataclass(frozen=True, slots=True)
class ScanFailure:
    """A target that could not be scanned (bad or refused input)."""

    target: str
    message: str
    format: FileFormat = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "format": self.format, "error": self.message}


_VERDICT_MARKUP: dict[Verdict, str] = {
    "flagged": "[bold red]FLAGGED[/]",
    "malformed": "[bold yellow]MALFORMED[/]",
    "clean": "[bold green]clean[/]",
}
_ROW_MARKUP: dict[Verdict, str] = {
    "flagged": "[red]flagged[/]",
    "malformed": "[yellow]malformed[/]",
    "clean": "[green]clean[/]",
}


def sorted_matches(matches: tuple[ArtistMatch, ...]) -> list[ArtistMatch]:
    """One match per artist (merged across files), highest score first."""
    return sorted(merge_matches(matches).values(), key=lambda m: (-m.score, m.artist))


def finding_json(match: ArtistMatch) -> dict[str, Any]:
    return {
        "artist": match.artist,
        "score": round(match.score, 4),
        "stage": match.stage,
        "evidence": [evidence_json(e) for e in match.evidence],
    }


def evidence_json(evidence: Evidence) -> dict[str, Any]:
    """``source`` and ``text``; name screening's ``rule``, ``confidence`` and ``why`` too."""
    item: dict[str, Any] = {"source": evidence.source, "text": evidence.text}
    if evidence.rule is not None:
        item["rule"] = evidence.rule
        item["confidence"] = evidence.confidence
        item["why"] = evidence.why
    return item


def render_report(console: Console, report: ScanReport) -> None:
    """A person's view of one report: verdict line, then each artist with its evidence."""
    verdict = _VERDICT_MARKUP[report.verdict]
    facts: list[str] = [report.kind, report.base_family]
    if report.size is not None:
        facts.append(f"{report.size:,} bytes")
    if report.sha256:
        facts.append(f"sha256 {report.sha256[:12]}")
    console.print(f"{verdict}  {shown(report.target)}  [dim]{', '.join(facts)}[/]")
    if report.malformed:
        console.print(f"  [yellow]malformed metadata:[/] {shown(report.malformed)}")
    for match in sorted_matches(report.matches):
        console.print(f"  [bold]{shown(match.artist)}[/]  score {match.score:.2f} ({match.stage})")
        for ev in match.evidence:
            rule = f"  [dim]({ev.rule}: {shown(ev.why or '')})[/]" if ev.rule else ""
            console.print(f"    [cyan]{shown(ev.source)}[/]: {shown(ev.text)}{rule}")
    if not report.probe_ran:
        console.print(f"  [dim]probe not run: {shown(report.probe_reason)}[/]")


def _common_folder(targets: list[str]) -> Path | None:
    """The folder every target of a folder scan lies in (None: no common one)."""
    try:
        return Path(os.path.commonpath([Path(t).parent for t in targets])) if targets else None
    except ValueError:  # absolute and relative paths mixed
        return None


def render_summary(console: Console, results: list[ScanReport | ScanFailure]) -> None:
    """A table of a folder scan: one row per file, named within the folder."""
    folder = _common_folder([item.target for item in results])
    table = Table(title=f"stylewatch scan of {shown(str(folder))}" if folder else "stylewatch scan")
    table.add_column("file", overflow="fold")  # a long name wraps; it is never cut off
    for column in ("verdict", "kind", "family", "artists"):
        table.add_column(column)
    for item in results:
        name = shown(str(Path(item.target).relative_to(folder)) if folder else item.target)
        if isinstance(item, ScanFailure):
            table.add_row(name, "[yellow]error[/]", "", "", shown(item.message))
            continue
        artists = ", ".join(m.artist for m in sorted_matches(item.matches))
        verdict = _ROW_MARKUP[item.verdict]
        table.add_row(name, verdict, item.kind, item.base_family, shown(artists))
    console.print(table)
    flagged = sum(1 for r in results if isinstance(r, ScanReport) and r.flagged)
    malformed = sum(1 for r in results if isinstance(r, ScanReport) and r.verdict == "malformed")
    failed = sum(1 for r in results if isinstance(r, ScanFailure))
    odd = f", {malformed} with malformed metadata" if malformed else ""
    console.print(f"{len(results)} files: {flagged} flagged{odd}, {failed} could not be scanned")
