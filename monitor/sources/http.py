"""HTTP plumbing the hub adapters share: politeness, retries, error translation, redaction.

One ``aiohttp.ClientSession`` per process is passed in by the composition root. Every
request here:

- waits for its host's concurrency slot and rate-limit spacing (a 429's Retry-After pushes
  the whole host back, not just the one request);
- has a timeout, a real User-Agent, and follows redirects by hand, so the credential (an
  ``Authorization`` header) goes only to its own origin and a ``?token=`` never leaves it;
- retries transient faults (connection errors, timeouts, 408/429/5xx) with exponential
  backoff and jitter, honouring ``Retry-After`` and Hugging Face's ``RateLimit`` ``t=``;
- leaves as ``SourceUnavailable`` (still transient after the last attempt) or
  ``SourceRejected`` (4xx, a body that is not what was asked for); no aiohttp exception
  escapes, and logs carry redacted URLs only;
- reads a body to its end (a network delivers it in many reads, not one), up to a cap, and
  charges what it read to the current upload's `ByteBudget` (`byte_budget`): a host that
  ignores Range has its connection closed once the wanted range or the budget is passed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from detectors.errors import SourceRejected, SourceUnavailable
from monitor.sources.base import Fetched

log = logging.getLogger(__name__)

T = TypeVar("T")

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
SECRET_QUERY_KEYS = frozenset(
    {"token", "api_key", "apikey", "key", "signature", "x-amz-signature", "x-amz-credential", "sig"}
)
READ_CHUNK_BYTES = 64 * 1024
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# What a Range read outside any upload's budget (a CLI scan, a README) may take off the wire
# when the host ignores Range and the wanted bytes start past the beginning.
MAX_UNBUDGETED_SKIP_BYTES = 4 * 1024 * 1024
# JSON may come compressed (CDNs gzip hub answers); file bytes are asked for as they are.
JSON_ENCODINGS = "gzip, deflate"


class OverBudget(SourceRejected):
    """A read would pass the upload's byte budget (or, outside one, the skip cap): nothing
    more is read for it; the caller records what it has."""


@dataclass
class ByteBudget:
    """The bytes one upload may still take off the wire, across every request made for it."""

    limit: int
    spent: int = 0

    @property
    def left(self) -> int:
        return max(0, self.limit - self.spent)


_BUDGET: ContextVar[ByteBudget | None] = ContextVar("stylewatch_byte_budget", default=None)


@contextmanager
def byte_budget(limit: int) -> Iterator[ByteBudget]:
    """Charge every read in this context (this task and what it awaits) to one budget."""
    budget = ByteBudget(limit)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """How politely and how long to talk to a hub; the defaults suit the public hubs."""

    user_agent: str = "stylewatch/0.1 (+https://github.com/stylewatch/stylewatch)"
    timeout_s: float = 60.0
    connect_timeout_s: float = 15.0
    max_attempts: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 120.0
    per_host_concurrency: int = 4
    per_host_interval_s: float = 0.2
    max_redirects: int = 5
    max_json_bytes: int = 32 * 1024 * 1024
    max_download_bytes: int = 64 * 1024**3


@dataclass(frozen=True, slots=True)
class Credential:
    """A hub token, sent as ``Authorization: Bearer`` to ``origin`` (``scheme://host:port``)
    and nowhere else. ``repr`` never shows the token."""

    origin: str
    token: str = field(repr=False)

    @classmethod
    def for_base(cls, base_url: str, token: str | None) -> Credential | None:
        return None if not token else cls(origin=origin_of(URL(base_url)), token=token)

    def applies_to(self, url: URL) -> bool:
        return origin_of(url) == self.origin


@dataclass(frozen=True, slots=True)
class JsonReply:
    """A decoded JSON body, the URL it came from and the Link header's ``rel`` targets."""

    url: URL
    data: Any  # JSON boundary: the adapter turns it into dataclasses
    links: Mapping[str, URL]


def origin_of(url: URL) -> str:
    return f"{url.scheme}://{url.host}:{url.explicit_port or url.port}"


def redact(url: URL | str) -> str:
    """The URL with every credential-like query value masked: safe to log."""
    parsed = URL(str(url))
    if not parsed.query:
        return str(parsed)
    masked = [
        (k, "REDACTED" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in parsed.query.items()
    ]
    return str(parsed.with_query(masked))


def strip_token(url: URL) -> URL:
    """The URL without ``token`` query parameters (a hub credential)."""
    kept = [(k, v) for k, v in url.query.items() if k.lower() != "token"]
    return url.with_query(kept)


def retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``RateLimit`` ``t=``."""
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError, IndexError):
                pass
    for part in headers.get("RateLimit", "").split(";"):
        key, _, number = part.strip().partition("=")
        if key == "t" and number.isascii() and number.isdigit():
            return float(number)
    return None


def parse_links(header: str, base: URL) -> dict[str, URL]:
    """``Link: <url>; rel="next", …`` as ``{"next": URL}`` (relative targets resolved)."""
    links: dict[str, URL] = {}
    for part in header.split(","):
        target, _, params = part.partition(";")
        target = target.strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.lower() == "rel":
                links[value.strip('"')] = base.join(URL(target[1:-1], encoded=True))
    return links


class _HostGate:
    """One host's concurrency slots and the earliest time its next request may start."""

    def __init__(self, concurrency: int) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.next_at = 0.0


class HttpClient:
    """The hub adapters' HTTP client over one shared ``ClientSession``.

    ``clock`` (monotonic seconds), ``wall`` (epoch seconds), ``sleep`` and ``jitter``
    (a float in [0, 1)) are injected so tests run the backoff without waiting.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        policy: HttpPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._session = session
        self.policy = policy or HttpPolicy()
        self._clock, self._wall, self._sleep, self._jitter = clock, wall, sleep, jitter
        self._gates: dict[str, _HostGate] = {}
        self._timeout = aiohttp.ClientTimeout(
            total=self.policy.timeout_s, sock_connect=self.policy.connect_timeout_s
        )

    async def get_json(
        self,
        url: URL | str,
        *,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        credential: Credential | None = None,
    ) -> JsonReply:
        """GET a JSON document (with retries)."""
        target = URL(str(url))
        if params:
            target = target.update_query(params)
        return await self._retrying(target, lambda: self._json_once(target, credential))

    async def get_range(
        self, url: URL | str, *, start: int, length: int, credential: Credential | None = None
    ) -> Fetched:
        """At most ``length`` bytes from ``start`` with a Range request (with retries).

        A server that ignores Range (200 with the whole body) is read only as far as needed,
        then the connection is closed; ``Fetched.bytes_read`` counts what was read.
        """
        target = URL(str(url))
        return await self._retrying(
            target, lambda: self._range_once(target, start, length, credential)
        )

    async def download(self, url: URL | str, dest: Path, *, credential: Credential | None) -> int:
        """Stream a whole file to ``dest`` (capped by ``max_download_bytes``); its size.

        A retry after a connection lost mid-body resumes: it asks for the rest with Range and
        appends (a host that ignores Range sends it all again, written over from the start)."""
        target = URL(str(url))
        await asyncio.to_thread(dest.unlink, missing_ok=True)
        return await self._retrying(target, lambda: self._download_once(target, dest, credential))

    # -- one attempt each ---------------------------------------------------------------

    async def _json_once(self, url: URL, credential: Credential | None) -> JsonReply:
        headers = {"Accept": "application/json", "Accept-Encoding": JSON_ENCODINGS}
        async with self._open(url, headers, credential, decompress=True) as resp:
            raw = await self._read_body(resp, url)
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, too deep or long
                raise SourceRejected(f"{redact(url)}: the answer is not JSON") from exc
            links = parse_links(resp.headers.get("Link", ""), resp.url)
            return JsonReply(url=resp.url, data=data, links=links)

    async def _read_body(self, resp: aiohttp.ClientResponse, url: URL) -> bytes:
        """The whole body (as many reads as the network takes), refused past the JSON cap or
        the upload's budget; a body cut short raises ``SourceUnavailable`` (retried)."""
        budget = _BUDGET.get()
        cap = self.policy.max_json_bytes
        allowed = cap if budget is None else min(cap, budget.left)
        announced = resp.content_length
        if announced is not None and announced > allowed:
            resp.close()
            raise self._over(url, announced, budget, cap)
        parts: list[bytes] = []
        total = 0
        try:
            async for chunk in resp.content.iter_any():
                total += len(chunk)
                if total > allowed:
                    resp.close()
                    raise self._over(url, total, budget, cap)
                parts.append(chunk)
        finally:
            if budget is not None:
                budget.spent += total
        return b"".join(parts)

    def _over(self, url: URL, size: int, budget: ByteBudget | None, cap: int) -> SourceRejected:
        if size > cap or budget is None:
            return SourceRejected(
                f"{redact(url)}: the JSON body is over the size cap ({cap:,} bytes)"
            )
        return OverBudget(
            f"{redact(url)}: the answer is over the upload's byte budget "
            f"({budget.limit:,} bytes; {budget.spent:,} spent)"
        )

    async def _range_once(
        self, url: URL, start: int, length: int, credential: Credential | None
    ) -> Fetched:
        headers = {"Range": f"bytes={start}-{start + length - 1}", "Accept-Encoding": "identity"}
        budget = _BUDGET.get()
        async with self._open(url, headers, credential) as resp:
            total = _total_size(resp)
            ignored = resp.status == 200
            skip = start if ignored else 0
            wanted = _wanted_bytes(resp, start, length, total)
            self._check_range_cost(url, skip + wanted, budget, ignored=ignored, resp=resp)
            data, read = await _read_bounded(resp.content, skip, length, budget)
            if ignored and (total is None or total > start + length):
                resp.close()  # Range ignored: drop the connection rather than drain the file
            return Fetched(data=data, bytes_read=read, total_size=total)

    def _check_range_cost(
        self,
        url: URL,
        cost: int,
        budget: ByteBudget | None,
        *,
        ignored: bool,
        resp: aiohttp.ClientResponse,
    ) -> None:
        """Refuse, before reading, a range whose bytes on the wire would pass the budget
        (or, with no budget, a Range-ignoring host's skip past the unbudgeted cap)."""
        if budget is not None and cost > budget.left:
            resp.close()
            how = "the host ignores Range, so " if ignored else ""
            raise OverBudget(
                f"{redact(url)}: {how}reading {cost:,} bytes would pass the upload's byte "
                f"budget ({budget.limit:,} bytes; {budget.spent:,} spent)"
            )
        if budget is None and ignored and cost > MAX_UNBUDGETED_SKIP_BYTES:
            resp.close()
            raise OverBudget(
                f"{redact(url)}: the host ignores Range; reading {cost:,} bytes to reach the "
                f"wanted range is over the {MAX_UNBUDGETED_SKIP_BYTES:,}-byte cap"
            )

    async def _download_once(self, url: URL, dest: Path, credential: Credential | None) -> int:
        have = await asyncio.to_thread(_size_on_disk, dest)
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        async with self._open(url, headers, credential) as resp:
            # Range ignored (200): the whole body again, written over from the start.
            written = have if resp.status == 206 else 0
            with dest.open("r+b" if written else "wb") as fh:
                fh.seek(written)
                async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                    written += len(chunk)
                    if written > self.policy.max_download_bytes:
                        raise SourceRejected(f"{redact(url)}: the file is over the size cap")
                    fh.write(chunk)
                fh.truncate()
        return written

    # -- plumbing -------------------------------------------------------------------------

    async def _retrying(self, url: URL, attempt: Callable[[], Awaitable[T]]) -> T:
        for number in range(1, self.policy.max_attempts + 1):
            try:
                return await attempt()
            except SourceUnavailable as exc:
                if number == self.policy.max_attempts:
                    raise
                delay = self._backoff_s(number, exc.retry_after_s)
                log.warning(
                    "http.retry",
                    extra={
                        "url": redact(url),
                        "attempt": number,
                        "delay_s": round(delay, 3),
                        "reason": str(exc),
                    },
                )
                await self._sleep(delay)
        raise AssertionError("unreachable")

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.policy.backoff_max_s)
        ceiling = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._jitter() * ceiling / 2

    @asynccontextmanager
    async def _open(
        self,
        url: URL,
        headers: Mapping[str, str],
        credential: Credential | None,
        *,
        decompress: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response with status 2xx after following redirects by hand; errors translated.
        ``decompress``: undo a gzip/deflate ``Content-Encoding`` (JSON); file bytes are read
        as sent, so what is counted is what crossed the wire."""
        for _ in range(self.policy.max_redirects + 1):
            async with self._gate(url):
                resp = await self._send(url, headers, credential, decompress)
                try:
                    location = self._redirect_target(resp)
                    if location is None:
                        self._check_status(resp)
                        async with _translated(url):
                            yield resp
                        return
                finally:
                    resp.release()
            url = (
                location
                if credential is None or credential.applies_to(location)
                else (strip_token(location))
            )
        raise SourceRejected(f"{redact(url)}: too many redirects")

    async def _send(
        self, url: URL, headers: Mapping[str, str], credential: Credential | None, decompress: bool
    ) -> aiohttp.ClientResponse:
        sent = {"User-Agent": self.policy.user_agent, **headers}
        if credential is not None and credential.applies_to(url):
            sent["Authorization"] = f"Bearer {credential.token}"
        async with _translated(url):
            return await self._session.get(
                url,
                headers=sent,
                allow_redirects=False,
                timeout=self._timeout,
                auto_decompress=decompress,
            )

    def _redirect_target(self, resp: aiohttp.ClientResponse) -> URL | None:
        if resp.status not in REDIRECT_STATUSES:
            return None
        location = resp.headers.get("Location")
        if not location:
            raise SourceRejected(f"{redact(resp.url)}: a redirect without a Location")
        return resp.url.join(URL(location, encoded=True))

    def _check_status(self, resp: aiohttp.ClientResponse) -> None:
        if 200 <= resp.status < 300:
            return
        where = f"{redact(resp.url)}: HTTP {resp.status}"
        if resp.status in RETRY_STATUSES:
            wait = retry_after_s(resp.headers, self._wall())
            if wait is not None:
                self._hold_host(resp.url, wait)
            raise SourceUnavailable(f"{where}, retry later", retry_after_s=wait)
        raise SourceRejected(where, status=resp.status, error_code=resp.headers.get("X-Error-Code"))

    def _hold_host(self, url: URL, wait_s: float) -> None:
        gate = self._gates.get(origin_of(url))
        if gate is not None:
            gate.next_at = max(gate.next_at, self._clock() + min(wait_s, self.policy.backoff_max_s))

    @asynccontextmanager
    async def _gate(self, url: URL) -> AsyncIterator[None]:
        gate = self._gates.setdefault(origin_of(url), _HostGate(self.policy.per_host_concurrency))
        async with gate.slots:
            now = self._clock()
            wait = gate.next_at - now
            gate.next_at = max(now, gate.next_at) + self.policy.per_host_interval_s
            if wait > 0:
                await self._sleep(wait)
            yield


@asynccontextmanager
async def _translated(url: URL) -> AsyncIterator[None]:
    """aiohttp's and the socket's exceptions as ``SourceUnavailable``/``SourceRejected``."""
    try:
        yield
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise SourceUnavailable(f"{redact(url)}: timed out, retry later") from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
        raise SourceUnavailable(
            f"{redact(url)}: connection failed ({type(exc).__name__}), retry later"
        ) from exc
    except aiohttp.ClientError as exc:
        raise SourceRejected(f"{redact(url)}: unusable answer ({type(exc).__name__})") from exc


async def _read_bounded(
    stream: aiohttp.StreamReader, skip: int, length: int, budget: ByteBudget | None = None
) -> tuple[bytes, int]:
    """Skip ``skip`` bytes, then read up to ``length``; never takes more than that. Each read
    is charged to ``budget`` as it arrives (a body cut mid-way still counts)."""
    read = 0
    parts: list[bytes] = []
    wanted = length
    while wanted > 0:
        step = min(READ_CHUNK_BYTES, skip - read if read < skip else wanted)
        chunk = await stream.read(step)
        if not chunk:
            break
        if budget is not None:
            budget.spent += len(chunk)
        if read < skip:
            read += len(chunk)
            continue
        parts.append(chunk)
        read += len(chunk)
        wanted -= len(chunk)
    return b"".join(parts), read


def _wanted_bytes(resp: aiohttp.ClientResponse, start: int, length: int, total: int | None) -> int:
    """How many of the ``length`` bytes asked for the answer holds (the file may be shorter)."""
    if total is None:
        return length
    return max(0, min(length, total - start))


def _size_on_disk(path: Path) -> int:
    """Bytes an earlier attempt left at ``path`` (0 when none)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _total_size(resp: aiohttp.ClientResponse) -> int | None:
    content_range = resp.headers.get("Content-Range", "")
    total = content_range.rpartition("/")[2]
    if total.isascii() and total.isdigit():
        return int(total)
    if resp.status == 200 and resp.content_length is not None:
        return resp.content_length
    return None
