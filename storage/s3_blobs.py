"""The blob store in an S3-compatible bucket (AWS S3, R2, GCS's S3 API, MinIO, SeaweedFS).

A blob is the object ``<prefix>ab/cd/abcd…``, the file store's layout, so either store can
be copied into the other (``stylewatch blobs migrate``). A PUT is atomic on S3 (an object is
absent or complete), and a blob is PUT before any row names it, as with the file store.
Blobs above ``part_bytes`` go up as a multipart upload, which S3 makes visible only once
complete (a failed one is aborted). botocore's "standard" retry mode retries 5xx answers,
throttling, connection resets and timeouts with exponential backoff and jitter; a whole-blob
read that breaks mid-body is read again.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from detectors.errors import StorageError
from storage.blobs import (
    CHUNK_BYTES,
    MAX_BLOB_BYTES,
    BlobCorrupt,
    BlobNotFound,
    BlobStoreUnavailable,
    BlobTooLarge,
    blob_key,
    blob_path,
    check_range,
)

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

PART_BYTES = 16 * 1024 * 1024
CHECK_TIMEOUT_S = 5.0
READ_ATTEMPTS = 3
_EMPTY_KEY = hashlib.sha256(b"").hexdigest()
_SESSION_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """An access key; unset fields fall back to boto3's default chain. Never printed."""

    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class S3Options:
    """How to reach the bucket: endpoint (None: AWS), region, addressing, retries, timeouts."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: Literal["auto", "path", "virtual"] = "path"
    max_attempts: int = 5
    timeout_s: float = 30.0
    part_bytes: int = PART_BYTES


class S3BlobStore:
    """Blobs in ``bucket`` under ``prefix`` (``""`` or ending in ``/``), keyed by sha256."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        options: S3Options | None = None,
        credentials: S3Credentials | None = None,
        max_bytes: int = MAX_BLOB_BYTES,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.options = options = options or S3Options()
        self.max_bytes = max_bytes
        self._credentials = creds = credentials or S3Credentials()
        self._client = _client(options, creds, options.max_attempts, options.timeout_s)
        self._probe_client: S3Client | None = None
        self._transfer = TransferConfig(
            multipart_threshold=options.part_bytes,
            multipart_chunksize=options.part_bytes,
            max_concurrency=4,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}', endpoint={self.where!r})"

    @property
    def where(self) -> str:
        return self.options.endpoint_url or f"AWS S3 ({self.options.region})"

    def object_key(self, sha256: str) -> str:
        return self.prefix + blob_path(sha256)

    def exists(self, sha256: str) -> bool:
        name = self.object_key(sha256)
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _no_such_key(exc):
                return False
            raise self._error(exc, f"cannot look up blob {sha256}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"cannot look up blob {sha256}") from exc
        return True

    def put(self, data: bytes) -> str:
        if len(data) > self.max_bytes:
            raise BlobTooLarge(self.max_bytes)
        key = hashlib.sha256(data).hexdigest()
        if self.exists(key):
            return key
        if len(data) < self.options.part_bytes:
            md5 = hashlib.md5(data, usedforsecurity=False).digest()
            self._put_object(key, data, md5)
        else:
            self._upload(key, io.BytesIO(data))
        return key

    def put_file(self, source: Path) -> str:
        """Store a file's bytes; return its key. The file is read twice (its hash names the
        object before the upload starts), so it must not change meanwhile."""
        key, md5, size = self._digest(source)
        if self.exists(key):
            return key
        try:
            with open(source, "rb") as body:
                if size < self.options.part_bytes:
                    self._put_object(key, body, md5)  # Content-MD5: a changed file is refused
                else:
                    self._upload(key, body)
        except OSError as exc:
            raise StorageError(f"cannot store {source} in the blob store: {exc.strerror}") from exc
        return key

    def open(self, sha256: str, *, start: int = 0, length: int | None = None) -> S3Reader:
        check_range(start, length)
        name = self.object_key(sha256)
        if length == 0:
            return S3Reader(None, self._size(sha256), sha256)
        extra: dict[str, Any] = {}
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            extra["Range"] = f"bytes={start}-{end}"
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=name, **extra)
        except ClientError as exc:
            if _no_such_key(exc):
                raise BlobNotFound(sha256) from exc
            if _status(exc) == 416:  # start at or past the end
                return S3Reader(None, self._size(sha256), sha256)
            raise self._error(exc, f"cannot read blob {sha256}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"cannot read blob {sha256}") from exc
        total = str(answer.get("ContentRange", "")).rpartition("/")[2]
        size = int(total) if total.isdigit() else answer["ContentLength"]
        return S3Reader(answer["Body"], size, sha256)

    def read(self, sha256: str) -> bytes:
        """The whole blob, checked against its key; read again if the body breaks off."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                with self.open(sha256) as reader:
                    data = reader.read()
                break
            except S3StreamBroken:
                if attempt == READ_ATTEMPTS:
                    raise
                time.sleep(0.2 * 2**attempt)
        if hashlib.sha256(data).hexdigest() != blob_key(sha256):
            raise BlobCorrupt(sha256, f"bucket {self.bucket}")
        return data

    def check(self) -> None:
        """The bucket answers and these credentials may read and write it (the empty blob
        is written once, harmlessly: it is content-addressed)."""
        try:
            self._probe.head_bucket(Bucket=self.bucket)
            name = self.object_key(_EMPTY_KEY)
            try:
                self._probe.head_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
                self._probe.put_object(Bucket=self.bucket, Key=name, Body=b"")
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "cannot use the blob store") from exc

    @property
    def _probe(self) -> S3Client:
        """The client of start-up and /readyz checks: one try and a short timeout, so a
        check answers fast."""
        if self._probe_client is None:
            timeout_s = min(self.options.timeout_s, CHECK_TIMEOUT_S)
            self._probe_client = _client(self.options, self._credentials, 1, timeout_s)
        return self._probe_client

    def _digest(self, source: Path) -> tuple[str, bytes, int]:
        sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
        try:
            with open(source, "rb") as reader:
                while chunk := reader.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise BlobTooLarge(self.max_bytes)
                    sha.update(chunk)
                    md5.update(chunk)
        except OSError as exc:
            raise StorageError(f"cannot store {source} in the blob store: {exc.strerror}") from exc
        return sha.hexdigest(), md5.digest(), size

    def _put_object(self, key: str, body: Any, md5: bytes) -> None:
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.object_key(key),
                Body=body,
                ContentMD5=base64.b64encode(md5).decode(),
                ContentType="application/octet-stream",
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"cannot write blob {key}") from exc

    def _upload(self, key: str, body: IO[bytes]) -> None:
        try:
            self._client.upload_fileobj(
                body,
                self.bucket,
                self.object_key(key),
                ExtraArgs={"ContentType": "application/octet-stream"},
                Config=self._transfer,
            )
        except S3UploadFailedError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ClientError | BotoCoreError):
                raise self._error(cause, f"cannot write blob {key}") from exc
            raise StorageError(f"cannot write blob {key} to bucket {self.bucket}") from exc
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"cannot write blob {key}") from exc

    def _size(self, sha256: str) -> int:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self.object_key(sha256))
        except ClientError as exc:
            if _status(exc) == 404:
                raise BlobNotFound(sha256) from exc
            raise self._error(exc, f"cannot look up blob {sha256}") from exc
        except BotoCoreError as exc:
            raise self._error(exc, f"cannot look up blob {sha256}") from exc
        return head["ContentLength"]

    def _error(self, exc: ClientError | BotoCoreError, what: str) -> StorageError:
        message = f"{what}: {_reason(exc, self.bucket, self.where)}"
        transient = isinstance(exc, ClientError) and _status(exc) >= 500
        if transient or (isinstance(exc, BotoCoreError) and not _is_credentials(exc)):
            return BlobStoreUnavailable(message)
        return StorageError(message)


class S3StreamBroken(BlobStoreUnavailable):
    """The connection broke while a blob's body was being read (worth reading again)."""


class S3Reader:
    """An object's body (or a range of it), read as it arrives."""

    def __init__(self, body: StreamingBody | None, size: int, sha256: str) -> None:
        self._body = body
        self.size = size
        self._sha256 = sha256

    def read(self, n: int = -1, /) -> bytes:
        if self._body is None:
            return b""
        try:
            return self._body.read(None if n < 0 else n)
        except (BotoCoreError, OSError, ValueError) as exc:  # resets, timeouts, short bodies
            raise S3StreamBroken(
                f"the connection broke while reading blob {self._sha256}: {type(exc).__name__}"
            ) from exc

    def close(self) -> None:
        if self._body is not None:
            self._body.close()

    def __enter__(self) -> S3Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client(options: S3Options, creds: S3Credentials, attempts: int, timeout_s: float) -> S3Client:
    config = Config(
        region_name=options.region,
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        s3={"addressing_style": options.addressing_style},
        # S3-compatible servers vary in their support of the newer CRC checksums; integrity
        # comes from Content-MD5 on single PUTs and from the sha256 key on whole reads.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        max_pool_connections=16,
        user_agent_extra="stylewatch",
    )
    with _SESSION_LOCK:  # creating clients from one session is not thread-safe
        client: S3Client = _session().client(
            "s3",
            endpoint_url=options.endpoint_url,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            config=config,
        )
    return client


@functools.cache
def _session() -> boto3.session.Session:
    """One boto3 session per process, made on first use: it loads and caches S3's service
    model (a fifth of a second), so a second store's client comes cheap."""
    return boto3.session.Session()


def _status(exc: ClientError) -> int:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code = exc.response.get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
        return 404
    return int(status)


def _is_credentials(exc: BotoCoreError) -> bool:
    return isinstance(exc, NoCredentialsError | PartialCredentialsError)


def _no_such_key(exc: ClientError) -> bool:
    """A 404 for the object, not for the bucket (a HEAD answer cannot tell them apart)."""
    return _status(exc) == 404 and exc.response.get("Error", {}).get("Code") != "NoSuchBucket"


def _reason(exc: ClientError | BotoCoreError, bucket: str, where: str) -> str:
    """What went wrong and what to do, in a few words (no credentials, no bodies)."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no S3 credentials: set [storage] access_key_id and secret_access_key "
            "(STYLEWATCH_STORAGE__ACCESS_KEY_ID, STYLEWATCH_STORAGE__SECRET_ACCESS_KEY) "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach the S3 endpoint {where}: is it up, and is [storage] endpoint_url right?"
        )
    if isinstance(exc, BotoCoreError):
        return f"S3 endpoint {where} failed ({type(exc).__name__}) after retries"
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = _status(exc)
    if code == "NoSuchBucket" or (status == 404 and code in ("404", "NotFound", "")):
        return f"bucket {bucket} does not exist at {where}: create it, or fix [storage] blobs"
    if status == 403 or code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
        return (
            f"access to bucket {bucket} at {where} is denied ({code or status}): check "
            "[storage] access_key_id and secret_access_key and the bucket's policy"
        )
    if status in (301, 400) and code in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
        return f"bucket {bucket} is in another region than [storage] region: fix region"
    return f"S3 answered {status} {code} for bucket {bucket} at {where}"
