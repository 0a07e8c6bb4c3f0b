"""Back-scans the artist portal starts: a new alias screens the recorded uploads again, a new
reference image scores the kept probe runs of earlier LoRAs; both run in the background
of the web app and the portal (and /me/backscan) say how far they got."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import BaseTestServer, TestServer
from PIL import Image

from detectors.results import TextField
from detectors.style.gram import GramEmbedder
from monitor.runtime import Runtime, open_runtime
from monitor.settings import ProbeSettings, StyleSettings
from storage.probe_cache import ProbeCache, ProbeRun, run_key
from tests.web_env import (  # noqa: F401
    Seeded,
    Visitor,
    build_app,
    settings_for,
    visitors,
    web_runtime,
    web_server,
    web_template,
)


async def _json_of(visitor: Visitor) -> Any:
    page = await visitor.get("/me/backscan")
    assert page.headers["Content-Type"].startswith("application/json")
    return json.loads(page.text)


async def _finished(visitor: Visitor) -> dict[str, Any]:
    """The portal's back-scan status once it stops running."""
    for _ in range(400):
        status: dict[str, Any] = await _json_of(visitor)
        if not status["running"]:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the back-scan did not finish in 20 s")


async def test_a_new_alias_backscans_the_recorded_uploads(visitors, web_runtime: Runtime):
    web_runtime.store.record_upload(
        "civitai", "55501", "ink dreams", hub_text=(TextField("description", "after inkmira"),)
    )
    uploads = web_runtime.store.counts().uploads
    mira = await visitors("mira@example.org")
    assert await _json_of(mira) == {"running": False, "text": ""}  # nothing asked yet
    await mira.get("/me")  # the form's CSRF token

    assert (await mira.post("/me/aliases", {"alias": "inkmira"})).status == 303

    status = await _finished(mira)
    # the seeded two that name Mira already, and the new one
    assert status["text"] == f"Checked {uploads} earlier uploads: 3 name you."
    found = [f for f in web_runtime.store.list_findings() if f.artist == "Mira Okafor"]
    assert sorted((f.upload_id, f.backscan) for f in found) == [
        ("55501", True),
        ("918273", False),
        ("hf:pixelmonk/okafor-watercolor", False),
    ]
    page = await mira.get("/me")
    assert 'id="backscan"' in page.text and "3 name you." in page.text
    assert "data-running" not in page.text  # done: the script stops polling


async def test_an_alias_the_artist_has_starts_nothing(visitors, web_runtime: Runtime):
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    assert (await mira.post("/me/aliases", {"alias": "mira_ok"})).status == 303
    assert await _json_of(mira) == {"running": False, "text": ""}
    assert 'id="backscan"' not in (await mira.get("/me")).text


# -- reference images ------------------------------------------------------------------


def _image(colour: tuple[int, int, int], seed: int, *, stripes: bool = False) -> Image.Image:
    """A noisy flat colour (striped: a texture of its own); the built-in embedder sees
    the palette and the texture."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 35, (64, 64, 3)), 0, 255)
    if stripes:
        pixels[::4] = 255 - pixels[::4]
    return Image.fromarray(pixels.astype(np.uint8))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


RED, BLUE, GREY = (200, 50, 30), (30, 60, 200), (128, 128, 128)


@pytest.fixture
async def probed_env(
    web_template: tuple[Path, Seeded], tmp_path: Path
) -> AsyncIterator[tuple[Runtime, BaseTestServer]]:
    """The seeded web env with sd1 configured for the probe and three probed sd1 LoRAs:
    kept runs that draw red stripes and blue noise over grey base images, and one probed
    before runs were kept."""
    shutil.copytree(web_template[0], tmp_path / "data")
    # The kept runs hold gram-v1 vectors, so the service scores with gram-v1.
    settings = settings_for(tmp_path / "data").model_copy(
        update={
            "probe": ProbeSettings(device="cpu", base_models={"sd1": tmp_path}),
            "style": StyleSettings(embedder="gram"),
        }
    )
    runtime = open_runtime(settings)
    cache = ProbeCache(settings.data_dir / "probe-cache", runtime.blobs)
    for upload_id, colour, stripes in (("7001", RED, True), ("7002", BLUE, False)):
        lora = [_image(colour, 10 + i, stripes=stripes) for i in range(3)]
        _probed(runtime, upload_id)
        cache.put_run(GramEmbedder.name, run_key("civitai", upload_id), _run(cache, lora))
    _probed(runtime, "7003")
    async with TestServer(build_app(runtime)) as server:
        yield runtime, server
    runtime.close()


def _probed(runtime: Runtime, upload_id: str) -> None:
    record, _ = runtime.store.record_upload(
        "civitai", upload_id, f"lora {upload_id}", kind="lora", base_family="sd1"
    )
    runtime.store.set_upload_state(record.id, "probed")


def _run(cache: ProbeCache, lora: list[Image.Image]) -> ProbeRun:
    base = [_image(GREY, i) for i in range(3)]
    gram = GramEmbedder()
    return ProbeRun(
        family="sd1",
        prompts=("a portrait", "a landscape", "a still life"),
        seeds=(1, 2, 3),
        lora_images=tuple(cache.put_thumbnail(i) for i in lora),
        base_images=tuple(cache.put_image(i) for i in base),
        lora_vectors=gram.embed(lora),
        base_vectors=gram.embed(base),
    )


async def test_a_new_reference_image_rescores_kept_probe_runs(probed_env):
    runtime, server = probed_env
    mira = Visitor(server)
    try:
        assert (await mira.login("mira@example.org")).status == 303
        await mira.get("/me")
        form = aiohttp.FormData()
        form.add_field("csrf_token", mira.csrf)
        reference = _png(_image(RED, 100, stripes=True))
        form.add_field("image", reference, filename="red.png", content_type="image/png")
        assert (await mira.post("/me/images", form, csrf=False)).status == 303
        status = await _finished(mira)
    finally:
        await mira.close()
    assert status["text"] == (
        "Compared 2 earlier probed LoRAs with your reference images: 1 looks like your work."
        " 1 more will be probed again."
    )
    found = [f for f in runtime.store.list_findings() if f.upload_id.startswith("700")]
    assert [(f.upload_id, f.artist, f.stage, f.backscan) for f in found] == [
        ("7001", "Mira Okafor", "probe", True)
    ]
    sheet = next(e.blob_sha256 for e in found[0].evidence if e.blob_sha256)
    assert sheet is not None and runtime.blobs.exists(sheet)
    states = {u.upload_id: u.state for u in runtime.store.list_uploads("civitai")}
    assert (states["7001"], states["7002"], states["7003"]) == ("probed", "probed", "requeued")
