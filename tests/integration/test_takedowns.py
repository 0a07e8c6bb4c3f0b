"""Takedown tracking against the fake hubs and a watched folder, on SQLite and PostgreSQL:
an upload removed, hidden, taken down, unpublished, gated or deleted turns its confirmed
findings to "taken_down" with the date and a system triage event; one still up is listed
for moderators after N days; a hub that errors changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import Engine

from monitor.pipeline.poll import Poller
from monitor.pipeline.takedown import TakedownChecker
from monitor.runtime import Runtime
from monitor.settings import FolderSettings
from monitor.sources.base import ListedUpload
from monitor.sources.civitai import CivitaiSource
from monitor.sources.folder import FolderSource
from monitor.sources.http import HttpClient
from monitor.sources.huggingface import HuggingFaceSource
from storage.file_blobs import FileBlobStore
from storage.source_state import SourceState
from storage.store import Store
from storage.takedowns import TAKEDOWN_ACTION, Takedowns
from storage.triage import TriageStore
from storage.users import UserStore
from tests.fakehubs.civitai import generic_lora
from tests.fakehubs.harness import FAST, SleepLog, settings_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.integration.conftest import FakeClock

pytestmark = pytest.mark.timeout(60)
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY_S = 86_400
Adapter = CivitaiSource | HuggingFaceSource | FolderSource


@pytest.fixture
async def hubs() -> AsyncIterator[Hubs]:
    async with running_hubs() as hubs:
        yield hubs


@dataclass
class World:
    """Recorded uploads (by a label) whose findings a moderator confirmed."""

    hubs: Hubs
    store: Store
    takedowns: Takedowns
    triage: TriageStore
    sources: dict[str, Adapter]
    folder: Path
    pks: dict[str, int]
    clock: FakeClock

    def checker(self) -> TakedownChecker:
        return TakedownChecker(self.sources, self.takedowns, interval_s=DAY_S)

    def finding(self, label: str):
        return next(f for f in self.store.list_findings() if f.upload_pk == self.pks[label])


async def world(
    hubs: Hubs, engine: Engine, clock: FakeClock, tmp_path: Path, session: aiohttp.ClientSession
) -> World:
    settings = settings_for(hubs, tmp_path, folder=tmp_path / "watched")
    store = Store(engine, clock=clock)
    runtime = Runtime(settings, engine, store, FileBlobStore(tmp_path / "blobs"))
    runtime.store.add_artist("Ilse Varnhagen")
    http = HttpClient(session, FAST, sleep=SleepLog())
    folder = tmp_path / "watched"
    folder.mkdir()
    sources: dict[str, Adapter] = {
        "civitai": CivitaiSource(settings.sources.civitai, http),
        "huggingface": HuggingFaceSource(settings.sources.huggingface, http),
        "folder": FolderSource(FolderSettings(enabled=True, path=folder), min_age_s=0),
    }
    listed: dict[str, ListedUpload] = {}
    for label in ("deleted", "hidden", "taken", "unpublished", "private", "up", "flaky"):
        v = hubs.civitai.add_upload(
            f"Ilse Varnhagen {label}", generic_lora(f"cv_{label}"), published_at=START
        )
        listed[label] = ListedUpload(str(v.id), label)
    for label in ("hf_deleted", "hf_gated", "hf_up"):
        lora = generic_lora(label, ss_training_comment="in the style of Ilse Varnhagen")
        repo = hubs.huggingface.add_repo(f"fan/{label}", START, {"w.safetensors": lora})
        listed[label] = ListedUpload(repo.id, repo.id)
    for label in ("file_deleted", "file_renamed"):
        lora = generic_lora(label, ss_training_comment="Ilse Varnhagen")
        (folder / f"{label}.safetensors").write_bytes(lora)
    pks: dict[str, int] = {}
    state = SourceState(engine)
    for name, source in sources.items():
        poller = Poller(source, store, state, threshold=0.5)
        if name == "folder":
            await poller.poll()
            continue
        await poller.screen_found([u for u in listed.values() if _of(name, u)])
    for upload in store.list_uploads():
        by_id = [k for k, u in listed.items() if u.upload_id == upload.upload_id]
        pks[by_id[0] if by_id else upload.name.removesuffix(".safetensors")] = upload.id
    users = UserStore(engine)
    moderator = users.add_user("mod@example.org", "moderator", "x")
    triage = TriageStore(engine, clock=clock)
    for finding in store.list_findings():
        triage.decide(finding.id, moderator.id, "confirm", "imitates her ink style")
    return World(hubs, store, Takedowns(engine, clock=clock), triage, sources, folder, pks, clock)


def _of(source: str, listed: ListedUpload) -> bool:
    return ("/" in listed.upload_id) == (source == "huggingface")


async def test_gone_uploads_are_taken_down_with_the_date(hubs, engine, clock, tmp_path) -> None:
    async with aiohttp.ClientSession() as session:
        w = await world(hubs, engine, clock, tmp_path, session)
        assert len(w.pks) == 12 and all(w.finding(k).state == "confirmed" for k in w.pks)
        civitai = {m.name.removeprefix("Ilse Varnhagen "): m for m in hubs.civitai.models.values()}
        del hubs.civitai.models[civitai["deleted"].id]
        civitai["hidden"].hidden = True
        civitai["taken"].mode = "TakenDown"
        civitai["unpublished"].versions[0].status = "Unpublished"
        hubs.civitai.show_unpublished = True  # the version answers 200 with its status
        civitai["private"].versions[0].availability = "Private"
        del hubs.huggingface.repos["fan/hf_deleted"]
        hubs.huggingface.repos["fan/hf_gated"].gated = "manual"
        (w.folder / "file_deleted.safetensors").unlink()
        shutil.move(w.folder / "file_renamed.safetensors", w.folder / "renamed.safetensors")
        hubs.civitai.faults.add(
            f"/api/v1/model-versions/{hubs.civitai.models[civitai['flaky'].id].versions[0].id}",
            "500",
            times=FAST.max_attempts,
        )
        clock.advance(3600)
        first = await w.checker().check_due()
        again = await w.checker().check_due()
        clock.advance(8 * DAY_S)
        later = await w.checker().check_due()
    gone = {"deleted", "hidden", "taken", "unpublished", "private", "hf_deleted", "hf_gated"}
    gone |= {"file_deleted"}
    assert (first.checked, first.gone, first.taken_down, first.errors) == (12, 8, 8, 1)
    assert again.checked == 1  # only the one whose hub failed is due again at once
    checked_at = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)  # the clock, an hour on
    for label in w.pks:
        finding = w.finding(label)
        if label in gone:
            assert (finding.state, finding.taken_down_at) == ("taken_down", checked_at), label
        else:
            assert (finding.state, finding.taken_down_at) == ("confirmed", None), label
    events = w.triage.events(w.finding("hf_gated").id)
    assert [(e.action, e.user_email) for e in events][:1] == [(TAKEDOWN_ACTION, None)]
    assert "gated" in (events[0].reason or "")
    checks = w.takedowns.checks(list(w.pks.values()))
    assert checks[w.pks["taken"]].status == "removed" and not checks[w.pks["taken"]].up
    assert checks[w.pks["hf_gated"]].status == "gated"
    assert checks[w.pks["unpublished"]].status == "unpublished"
    assert checks[w.pks["private"]].status == "hidden"
    assert checks[w.pks["file_renamed"]].up
    assert checks[w.pks["flaky"]].up  # checked again at the second run, the hub back
    assert checks[w.pks["file_deleted"]].gone_at == checked_at
    assert later.checked == 4 and later.gone == 0  # the ones still up, a day later
    still = {s.finding.upload_pk for s in w.takedowns.still_up(7)}
    assert still == {w.pks[k] for k in ("up", "flaky", "hf_up", "file_renamed")}


async def test_a_hub_that_errors_changes_nothing(hubs, engine, clock, tmp_path) -> None:
    async with aiohttp.ClientSession() as session:
        w = await world(hubs, engine, clock, tmp_path, session)
        hubs.civitai.faults.add("/api/v1/model", "500", times=100)
        hubs.huggingface.faults.add("/api/models/", "401", times=100)  # a bad token, say
        shutil.rmtree(w.folder)  # the watched folder itself is missing: not a deletion
        summary = await w.checker().check_due()
    assert summary.checked == 12 and summary.errors == 12 and summary.taken_down == 0
    assert {f.state for f in w.store.list_findings()} == {"confirmed"}
    assert w.takedowns.checks(list(w.pks.values())) == {}
    assert all(e.action != TAKEDOWN_ACTION for e in w.triage.events())
