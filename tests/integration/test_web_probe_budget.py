"""A checkpoint the size budget left unprobed says so on its finding, and a moderator can
queue it for a probe from there (an artist cannot)."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import html

from detectors.results import ArtistMatch, Evidence
from monitor.runtime import Runtime
from storage.probe_jobs import PROBE_ASKED
from tests.web_env import (  # noqa: F401
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)

OVER = "not probed: over the size budget (8.6 GB): the checkpoint is 12.88 GB"


def _over_budget_finding(runtime: Runtime, artist_id: int) -> tuple[int, int]:
    record, _ = runtime.store.record_upload(
        "civitai", "777001", "Okafor Merge XL", kind="checkpoint", base_family="sdxl"
    )
    runtime.store.set_upload_state(record.id, "failed", error=OVER)
    match = ArtistMatch(artist_id, "", 0.8, "metadata", (Evidence("name", "okafor merge"),))
    return record.id, runtime.store.record_findings(record.id, [match])[0].id


async def test_a_moderator_queues_an_over_budget_checkpoint_from_its_finding(
    visitors, seeded, web_runtime
):
    upload_pk, fid = _over_budget_finding(web_runtime, seeded.artists["Mira Okafor"])
    mod = await visitors("mod@example.org")
    page = await mod.get(f"/findings/{fid}")
    assert OVER in html.unescape(page.text)
    assert 'id="probe-anyway"' in page.text
    assert (await mod.post(f"/findings/{fid}/probe")).status == 303
    upload = web_runtime.store.list_uploads("civitai")
    queued = next(u for u in upload if u.id == upload_pk)
    assert (queued.state, queued.error) == ("screened", PROBE_ASKED)
    page = await mod.get(f"/findings/{fid}")
    status = html.unescape(page.text).split('id="probe-status">', 1)[1].split("<", 1)[0]
    # This web app has no base model configured, so the line says that before "waiting".
    assert status == "not run: no base model configured for sdxl ([probe] base_models has none)"
    assert 'id="probe-anyway"' not in page.text
    assert (await mod.post(f"/findings/{fid}/probe")).status == 409  # not held back any more


async def test_an_artist_cannot_queue_a_probe(visitors, seeded, web_runtime):
    _, fid = _over_budget_finding(web_runtime, seeded.artists["Mira Okafor"])
    artist = await visitors("mira@example.org")
    page = await artist.get(f"/findings/{fid}")
    assert 'id="probe-anyway"' not in page.text
    assert (await artist.post(f"/findings/{fid}/probe")).status in (403, 404)
    states = {u.upload_id: u.state for u in web_runtime.store.list_uploads("civitai")}
    assert states["777001"] == "failed"
