"""Bytes per upload, everything the poller reads included, and uploads/s through screening,
against the fake hubs delivering as a real network does (bodies in small pieces, gzip).

Run ``python bench/poll.py``. Uploads carry realistic headers (kohya SD1.5 and SDXL LoRAs,
an ai-toolkit Flux LoRA, an SDXL checkpoint: 0.1-0.35 MB of header JSON with tag-frequency
metadata) in front of their real data size, and LoRAs have real module pairs, so the
re-upload fingerprint's ranges are read too. Per upload: the hub JSON about it, the header,
the fingerprint's ranges (what its byte budget counted), plus its share of the listing pages.
Two runs: storage honouring Range, and a storage host that ignores Range on 20 % of files.
The baseline, measured in the same run on a sample, is fetching the whole file. Ends with one
line of JSON.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.build.sources import create_session
from monitor.pipeline.poll import MAX_BYTES_PER_UPLOAD, Poller
from monitor.sources.base import RemoteFile, Source
from monitor.sources.civitai import CivitaiSource
from monitor.sources.http import HttpClient, HttpPolicy
from monitor.sources.huggingface import HuggingFaceSource
from storage.source_state import SourceState
from tests.fakehubs.harness import runtime_for
from tests.fakehubs.servers import Hubs, running_hubs
from tests.fakehubs.storage import Blob
from tests.modelfiles import tensor_bytes

CIVITAI_UPLOADS = 60
HF_REPOS = 20
BASELINE_SAMPLE = 6
IGNORE_RANGE_SHARE = 0.2
LISTING_PATHS = ("/api/v1/models", "/api/models")
POLICY = HttpPolicy(per_host_interval_s=0.0, per_host_concurrency=8)
# (name, tensor count, rank or width, weight in the mix)
KINDS = (
    ("sd15_lora", 792, 32, 4),
    ("sdxl_lora", 2166, 32, 2),
    ("flux_lora", 988, 16, 3),
    ("sdxl_checkpoint", 2515, 0, 1),
)


# Module widths as each family has them: SD1.5's UNet at 320/640/1280 with its 768-wide text
# encoder, SDXL's at 640/1280 with encoders of 768 and 1280, Flux's 3072-wide blocks.
WIDTHS = {
    "sd15_lora": (320, 640, 1280, 768),
    "sdxl_lora": (640, 1280, 768, 1280),
    "flux_lora": (3072,),
}


def realistic(kind: str, count: int, rank: int, seed: int) -> Blob:
    """A header of ``count`` tensors (names and shapes in the trainer's style) and the data
    size they imply; only the header bytes are held in memory."""
    header: dict[str, Any] = {"__metadata__": _metadata(kind, seed)}
    offset = 0
    for i in range(count):
        if rank:  # pairs: module m's lora_down then its lora_up, at the family's widths
            m = i // 2
            width = WIDTHS[kind][m % len(WIDTHS[kind])]
            name = f"lora_unet_output_blocks_{m // 40}_1_transformer_blocks_{m % 40}_attn1_to_q"
            part = (
                ("lora_down.weight", [rank, width]) if i % 2 else ("lora_up.weight", [width, rank])
            )
        else:
            name = f"model.diffusion_model.output_blocks.{i // 40}.1.transformer_blocks.{i % 40}"
            part = ("attn1.to_q.weight", [1280, 1280])
        nbytes = tensor_bytes("F16", tuple(part[1]))
        header[f"{name}.{part[0]}"] = {
            "dtype": "F16",
            "shape": part[1],
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    prefix = len(raw).to_bytes(8, "little") + raw
    return Blob(prefix, len(prefix) + offset)


def _metadata(kind: str, seed: int) -> dict[str, str]:
    tags = {f"tag {seed} {n}": n for n in range(400)}
    return {"ss_output_name": f"{kind}_{seed}", "ss_tag_frequency": json.dumps({"10_x": tags})}


def seed(hubs: Hubs) -> None:
    mix = [k for k in KINDS for _ in range(k[3])]
    start = datetime(2026, 8, 12, tzinfo=UTC)
    for n in range(CIVITAI_UPLOADS):
        kind, count, rank, _ = mix[n % len(mix)]
        hubs.civitai.add_upload(
            f"{kind} {n}",
            realistic(kind, count, rank, n),
            published_at=start + timedelta(seconds=n),
        )
    for n in range(HF_REPOS):
        kind, count, rank, _ = mix[(n * 3) % len(mix)]
        files = {f"{kind}_{n}.safetensors": realistic(kind, count, rank, 1000 + n)}
        hubs.huggingface.add_repo(f"bench/{kind}-{n}", start + timedelta(seconds=n), files)


async def measure(hubs: Hubs, data_dir: Path, *, baseline: bool) -> dict[str, Any]:
    runtime = runtime_for(hubs, data_dir)
    try:
        async with create_session() as session:
            http = HttpClient(session, POLICY)
            config = runtime.settings.sources
            civitai = CivitaiSource(config.civitai, http, first_poll_pages=5)
            sources: list[Source] = [
                civitai,
                HuggingFaceSource(config.huggingface, http, first_poll_pages=5),
            ]
            state = SourceState(runtime.engine)
            began = time.perf_counter()
            summaries = [
                await Poller(s, runtime.store, state, threshold=0.5).poll() for s in sources
            ]
            elapsed = time.perf_counter() - began
            whole = await whole_files(civitai, hubs, data_dir) if baseline else []
        fingerprints = Counter(
            (f.fingerprint or "none").partition(":")[0]
            for u in runtime.store.list_uploads()
            for f in u.files
        )
    finally:
        runtime.close()
    per_upload = sorted(b for s in summaries for b in s.bytes_per_upload)
    listing = sum(
        fake.network.sent_by_path[path]
        for fake in (hubs.civitai, hubs.huggingface)
        for path in LISTING_PATHS
    )
    share = listing / max(1, len(per_upload))
    return {
        "per_upload": [round(b + share) for b in per_upload],
        "budgeted": per_upload,
        "elapsed_s": elapsed,
        "baseline": whole,
        "failed": sum(s.failed for s in summaries),
        "fingerprints": dict(fingerprints),
        "listing_bytes_per_upload": round(share),
        "storage_bytes_sent": hubs.storage.bytes_sent,
    }


async def whole_files(source: CivitaiSource, hubs: Hubs, data_dir: Path) -> list[int]:
    sizes = []
    for version in list(hubs.civitai.models.values())[:BASELINE_SAMPLE]:
        v = version.versions[0]
        file = RemoteFile(v.files[0].name, f"{hubs.civitai_url}/api/download/models/{v.id}")
        target = data_dir / "whole.bin"
        sizes.append(await source.download(file, target))
        target.unlink()
    return sizes


def p95(values: list[int]) -> int:
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


async def run(*, ignore_range: bool, data_dir: Path, baseline: bool) -> dict[str, Any]:
    async with running_hubs() as hubs:
        seed(hubs)
        if ignore_range:
            keys = sorted(hubs.storage.blobs)
            hubs.storage.ignore_range = set(keys[:: round(1 / IGNORE_RANGE_SHARE)])
        return await measure(hubs, data_dir, baseline=baseline)


def figures(result: dict[str, Any]) -> dict[str, Any]:
    per_upload = result["per_upload"]
    return {
        "uploads": len(per_upload),
        "failed": result["failed"],
        "median_bytes_per_upload": int(statistics.median(per_upload)),
        "p95_bytes_per_upload": p95(per_upload),
        "max_bytes_per_upload": max(per_upload),
        "max_budgeted_bytes": max(result["budgeted"]),
        "listing_bytes_per_upload": result["listing_bytes_per_upload"],
        "storage_bytes_sent_per_upload": result["storage_bytes_sent"] // max(1, len(per_upload)),
        "fingerprints": result["fingerprints"],
        "uploads_per_s": round(len(per_upload) / result["elapsed_s"], 1),
    }


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        honoured = await run(ignore_range=False, data_dir=Path(tmp) / "a", baseline=True)
        ignored = await run(ignore_range=True, data_dir=Path(tmp) / "b", baseline=False)
    baseline = sorted(honoured["baseline"])
    whole = int(statistics.median(baseline))
    report: dict[str, Any] = {
        "range_honoured": figures(honoured),
        "range_ignored_on_20pct": figures(ignored),
        "baseline_whole_file_median_bytes": whole,
        "baseline_whole_file_p95_bytes": p95(baseline),
        "budget_bytes": MAX_BYTES_PER_UPLOAD,
        "target_median_bytes": 512 * 1024,
    }
    for name in ("range_honoured", "range_ignored_on_20pct"):
        part = report[name]
        part["median_vs_whole_file"] = round(part["median_bytes_per_upload"] / whole, 4)
        print(
            f"{name}: {part['uploads']} uploads, median {part['median_bytes_per_upload']:,} B "
            f"(x{part['median_vs_whole_file']} of the whole file), p95 "
            f"{part['p95_bytes_per_upload']:,} B, max {part['max_bytes_per_upload']:,} B "
            f"(budget {MAX_BYTES_PER_UPLOAD:,} B), fingerprints {part['fingerprints']}"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
