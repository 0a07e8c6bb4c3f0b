"""Hugging Face: new LoRA and adapter repos, newest first, with their card text.

Why aiohttp against the Hub's REST endpoints rather than ``huggingface_hub.HfApi``: the sync
client would need a thread per call and its own HTTP stack, so the per-host limits, backoff,
redaction and the bounded Range reads of ``monitor.sources.http`` would not apply to it; it follows
only relative redirects and assumes a 206 (a CDN that ignores Range makes it read the whole
file); and the test environment sets ``HF_HUB_OFFLINE=1``, which it honours by refusing every
request. The endpoints and parameters are the ones ``HfApi`` sends (hubs/README.md §2).

Listing: ``/api/models?sort=createdAt`` per feed (``filter=lora``, and text-to-image repos,
kept only when their tags say adapter), following ``Link: rel="next"`` verbatim, until
``overlap_s`` past the stored high-water mark. ``createdAt`` is the repo's creation, so a repo
made long ago and made public, or given a new file, today would never surface there: the
``filter=lora`` feed is also read by ``sort=lastModified`` (its own high-water mark in the
cursor's ``extra``), and each repo it names that is older than the creation feed's window is
listed as a *revision*, ``owner/name@sha`` (hint ``revision_of``): the poller records a
revision only for the model files no earlier upload of the repo holds (by LFS sha256), so an
unchanged repo is never read twice.
Hydrating: ``/api/models/{repo}?blobs=true`` for siblings (sizes, LFS sha256) and
``cardData``, plus the README text. Headers are read from ``/{repo}/resolve/{sha}/{file}``
by Range, a few files per repo, skipping ai-toolkit's intermediate ``_<9 digits>.safetensors``
checkpoints when the final file is there.

A hub history search is ``/api/models?search=`` (a substring of the repo id) with the same
Link paging; a takedown check reads ``/api/models/{repo}`` again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from yarl import URL

from detectors.errors import SourceError, SourceRejected, UploadNotReady
from detectors.results import TextField
from monitor.settings import HuggingFaceSettings
from monitor.sources import hub_json as j
from monitor.sources.base import (
    CheckTarget,
    Cursor,
    Fetched,
    HubStatus,
    ListedUpload,
    Listing,
    RemoteFile,
    SearchPage,
    Upload,
)
from monitor.sources.http import Credential, HttpClient

log = logging.getLogger(__name__)

FEEDS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("filter", "lora"),),
    (("pipeline_tag", "text-to-image"),),
)
MODIFIED_FEED: tuple[tuple[str, str], ...] = (("filter", "lora"),)
MODIFIED_MARK = "modified_high_water"
REVISION_SEPARATOR = "@"
PAGE_LIMIT = 100
OVERLAP_S = 3600.0
MAX_PAGES = 10
FIRST_POLL_PAGES = 1
MAX_FILES_PER_REPO = 4
README_MAX_BYTES = 64 * 1024
MAX_CARD_CHARS = 20_000
MODEL_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
INTERMEDIATE = re.compile(r"_\d{9}\.safetensors$")
ADAPTER_TAGS = frozenset({"lora", "lycoris", "dora", "peft", "template:sd-lora"})
MIN_SEARCH_WORD_CHARS = 5  # shorter words alone match too many unrelated repo ids
NOISE_TAG_PREFIXES = ("base_model:", "license:", "region:", "dataset:", "arxiv:", "doi:")


@dataclass(frozen=True, slots=True)
class Sibling:
    """A file of a repo: its path, and size and LFS sha256 when ``blobs=true`` was asked."""

    rfilename: str
    size: int | None = None
    sha256: str | None = None

    @classmethod
    def parse(cls, raw: Any) -> Sibling | None:
        if not isinstance(raw, dict) or j.text(raw.get("rfilename")) is None:
            return None
        lfs = j.sub(raw, "lfs")
        return cls(str(raw["rfilename"]), j.opt_int(raw.get("size")), j.text(lfs.get("sha256")))


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A repo as ``/api/models`` or ``/api/models/{repo}`` describes it (tolerant read)."""

    id: str
    author: str | None
    sha: str | None
    created_at: datetime | None
    last_modified: datetime | None
    tags: tuple[str, ...]
    library_name: str | None
    siblings: tuple[Sibling, ...]
    card_data: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: Any) -> ModelInfo:
        obj = j.obj(raw, "model")
        repo_id = j.text(obj.get("id")) or j.text(obj.get("modelId"))
        if repo_id is None:
            raise SourceRejected("huggingface sent a model without an id")
        siblings = (Sibling.parse(s) for s in j.items(obj.get("siblings")))
        return cls(
            id=repo_id,
            author=j.text(obj.get("author")) or repo_id.partition("/")[0],
            sha=j.text(obj.get("sha")),
            created_at=j.parse_time(obj.get("createdAt")),
            last_modified=j.parse_time(obj.get("lastModified")),
            tags=tuple(j.strings(obj.get("tags"))),
            library_name=j.text(obj.get("library_name")),
            siblings=tuple(s for s in siblings if s is not None),
            card_data=j.sub(obj, "cardData"),
        )

    @property
    def is_adapter(self) -> bool:
        tags = {t.lower() for t in self.tags}
        return (
            bool(tags & ADAPTER_TAGS)
            or any(t.startswith("base_model:adapter:") for t in tags)
            or self.library_name == "peft"
        )

    def listed(self) -> ListedUpload:
        position = self.created_at.isoformat() if self.created_at else None
        return ListedUpload(self.id, self.id, position, {"sha": self.sha})

    def revision(self) -> ListedUpload | None:
        """The repo at its current commit, as a revision upload (None without a sha)."""
        if not self.sha:
            return None
        position = self.last_modified.isoformat() if self.last_modified else None
        prefix = f"{self.id}{REVISION_SEPARATOR}"
        hint = {"sha": self.sha, "revision_of": self.id, "revision_prefix": prefix}
        return ListedUpload(prefix + self.sha, self.id, position, hint)


def repo_of(upload_id: str) -> str:
    """The repo id of an upload id (``owner/name`` or a revision's ``owner/name@sha``)."""
    return upload_id.partition(REVISION_SEPARATOR)[0]


class HuggingFaceSource:
    """The Hugging Face adapter of the ``Source`` port."""

    name = "huggingface"

    def __init__(
        self,
        settings: HuggingFaceSettings,
        http: HttpClient,
        *,
        page_limit: int = PAGE_LIMIT,
        overlap_s: float = OVERLAP_S,
        max_pages: int = MAX_PAGES,
        first_poll_pages: int = FIRST_POLL_PAGES,
        max_files: int = MAX_FILES_PER_REPO,
    ) -> None:
        self._base = URL(settings.endpoint.rstrip("/") + "/")
        token = settings.token.get_secret_value() if settings.token else None
        self._credential = Credential.for_base(settings.endpoint, token)
        self._http = http
        self._limit, self._overlap = page_limit, timedelta(seconds=overlap_s)
        self._max_pages, self._first_pages, self._max_files = max_pages, first_poll_pages, max_files

    async def list_new(self, cursor: Cursor) -> Listing:
        mark = j.parse_time(cursor.high_water)
        floor = mark - self._overlap if mark else None
        found: dict[str, ModelInfo] = {}
        errors = []
        for feed in FEEDS:
            error = await self._read_feed(feed, floor, found, "createdAt")
            if error:
                errors.append(error)
        newest = max((m.created_at for m in found.values() if m.created_at), default=None)
        high = max(filter(None, (mark, newest)), default=None)
        fresh = [m for m in found.values() if _at_or_after(m.created_at, floor)]
        fresh.sort(key=lambda m: m.created_at.isoformat() if m.created_at else "", reverse=True)
        revisions, modified_mark, error = await self._modified(cursor, mark, floor)
        if error:
            errors.append(error)
        extra = {**cursor.extra, MODIFIED_MARK: modified_mark} if modified_mark else cursor.extra
        return Listing(
            uploads=tuple(m.listed() for m in fresh if m.is_adapter) + revisions,
            cursor=Cursor(high.isoformat() if high else None, extra),
            complete=not errors,
            error="; ".join(errors) or None,
        )

    async def _modified(
        self, cursor: Cursor, created_mark: datetime | None, created_floor: datetime | None
    ) -> tuple[tuple[ListedUpload, ...], str | None, str | None]:
        """Repos modified since the last poll (``sort=lastModified``) as revisions, the new
        high-water mark of that feed, and the error that stopped it. Only repos older than
        the creation feed's window are revisions: a newer one is that feed's (listed again
        until it is recorded), so a repo's first sight is never a revision. The first poll
        only sets the mark: every repo it lists is new anyway."""
        saved = cursor.extra.get(MODIFIED_MARK)
        mark = j.parse_time(saved) or created_mark
        floor = mark - self._overlap if mark else None
        found: dict[str, ModelInfo] = {}
        error = await self._read_feed(MODIFIED_FEED, floor, found, "lastModified")
        newest = max((m.last_modified for m in found.values() if m.last_modified), default=None)
        high = max(filter(None, (mark, newest)), default=None)
        if floor is None:
            return (), high.isoformat() if high else None, error
        modified = [
            m
            for m in found.values()
            if _at_or_after(m.last_modified, floor)
            and created_floor is not None
            and m.created_at is not None
            and m.created_at < created_floor
        ]
        revisions = (m.revision() for m in modified if m.is_adapter)
        return tuple(r for r in revisions if r), high.isoformat() if high else None, error

    async def hydrate(self, listed: ListedUpload) -> Upload:
        """The repo's files and text; a revision (``owner/name@sha``) keeps its own id."""
        reply = await self._http.get_json(
            self._base.join(URL(f"api/models/{quote(repo_of(listed.upload_id))}")),
            params={"blobs": "true"},
            credential=self._credential,
        )
        info = ModelInfo.parse(reply.data)
        files = tuple(self._remote_files(info))
        if not files:
            raise UploadNotReady(f"huggingface repo {info.id} has no model file yet")
        readme = await self._readme(info)
        return Upload(
            upload_id=listed.upload_id if REVISION_SEPARATOR in listed.upload_id else info.id,
            name=info.id,
            files=files,
            hub_text=tuple(_hub_text(info, readme)),
            url=str(self._base.join(URL(quote(info.id)))),
            uploader=info.author,
            base_model=next(j.strings(info.card_data.get("base_model")), None),
        )

    def search_terms(self, name: str) -> tuple[str, ...]:
        """The Hub's ``search`` is a case-insensitive substring of the repo id, where names
        are written ``mara-quellbrook``, ``mara_quellbrook`` or ``maraquellbrook``: the
        name's longest word finds all of them when it is distinctive enough, else each
        joined form is searched. A lone short word (``Ada``) is not searched: as a substring
        it is in thousands of unrelated ids (``adapter``)."""
        words = [w.lower() for w in re.findall(r"[^\W_]+", name)]
        longest = max(words, key=len, default="")
        if len(longest) >= MIN_SEARCH_WORD_CHARS:
            return (longest,)
        if len(words) < 2:
            return ()
        return tuple(dict.fromkeys(sep.join(words) for sep in ("-", "_", "")))

    async def search(self, query: str, after: str | None) -> SearchPage:
        """One page of ``/api/models?search=…`` (adapter repos only), newest first; ``after``
        is the path and query of the page the previous one's ``Link: rel="next"`` named."""
        if after is None:
            params = [("search", query), ("sort", "createdAt"), ("limit", str(self._limit))]
            url = self._base.join(URL("api/models")).update_query([*params, ("full", "true")])
        else:
            url = self._base.join(URL(after.lstrip("/"), encoded=True))
        reply = await self._http.get_json(url, credential=self._credential)
        models = list(_models(reply.data))
        following = reply.links.get("next")
        return SearchPage(
            uploads=tuple(m.listed() for m in models if m.is_adapter),
            next=following.raw_path_qs if following is not None else None,
        )

    async def hub_status(self, target: CheckTarget) -> HubStatus:
        """Gone when the repo answers 404 (or 401 ``RepoNotFound``: deleted or made
        private), is disabled, gated or private, or no longer holds the recorded files."""
        try:
            reply = await self._http.get_json(
                self._base.join(URL(f"api/models/{quote(repo_of(target.upload_id))}")),
                credential=self._credential,
            )
        except SourceRejected as exc:
            if exc.status in (404, 410) or exc.error_code == "RepoNotFound":
                return HubStatus("removed", f"the repo answers HTTP {exc.status}")
            raise
        repo = j.obj(reply.data, "model")
        gated = repo.get("gated")
        if repo.get("disabled") is True:
            return HubStatus("removed", "the repo is disabled")
        if gated not in (None, False):
            return HubStatus("gated", f"the repo is gated ({gated})")
        if repo.get("private") is True:
            return HubStatus("hidden", "the repo is private")
        files = {s.rfilename for s in ModelInfo.parse(repo).siblings}
        if target.filenames and files.isdisjoint(target.filenames):
            return HubStatus("removed", "the recorded model files were deleted from the repo")
        return HubStatus("up")

    async def read_bytes(self, file: RemoteFile, start: int, length: int) -> Fetched:
        return await self._http.get_range(
            file.url, start=start, length=length, credential=self._credential
        )

    async def download(self, file: RemoteFile, dest: Path) -> int:
        return await self._http.download(file.url, dest, credential=self._credential)

    # -- listing --------------------------------------------------------------------------

    async def _read_feed(
        self,
        feed: Iterable[tuple[str, str]],
        floor: datetime | None,
        found: dict[str, ModelInfo],
        sort: str,
    ) -> str | None:
        params = [*feed, ("sort", sort), ("limit", str(self._limit)), ("full", "true")]
        url: URL | None = self._base.join(URL("api/models")).update_query(params)
        pages = self._max_pages if floor else self._first_pages
        for _ in range(pages):
            if url is None:
                break
            try:
                reply = await self._http.get_json(url, credential=self._credential)
            except SourceError as exc:
                log.warning(
                    "huggingface.feed.incomplete", extra={"source": self.name, "reason": str(exc)}
                )
                return str(exc)
            page = list(_models(reply.data))
            for model in page:
                found.setdefault(model.id, model)
            url = reply.links.get("next")
            if _past(page, floor, sort):
                break
        return None

    # -- hydrating ------------------------------------------------------------------------

    def _remote_files(self, info: ModelInfo) -> Iterator[RemoteFile]:
        for sibling in choose_files(info.siblings, self._max_files):
            yield RemoteFile(
                name=sibling.rfilename,
                url=str(self._resolve_url(info, sibling.rfilename)),
                size=sibling.size,
                hashes={"sha256": sibling.sha256.upper()} if sibling.sha256 else {},
            )

    def _resolve_url(self, info: ModelInfo, path: str) -> URL:
        revision = info.sha or "main"
        path = f"{quote(info.id)}/resolve/{quote(revision, safe='')}/{quote(path)}"
        return self._base.join(URL(path, encoded=True))

    async def _readme(self, info: ModelInfo) -> str:
        if not any(s.rfilename == "README.md" for s in info.siblings):
            return ""
        try:
            fetched = await self._http.get_range(
                self._resolve_url(info, "README.md"),
                start=0,
                length=README_MAX_BYTES,
                credential=self._credential,
            )
        except SourceError as exc:  # the card data still gets screened
            log.warning(
                "huggingface.readme.unread", extra={"upload_id": info.id, "reason": str(exc)}
            )
            return ""
        return fetched.data.decode("utf-8", errors="replace")


def choose_files(siblings: Iterable[Sibling], cap: int) -> list[Sibling]:
    """The repo's model files worth a header read: final safetensors first (intermediate
    ``_<step>.safetensors`` only when no final file exists, latest step first), pickles only
    when nothing else (they are reported and refused, never loaded)."""
    models = [s for s in siblings if s.rfilename.lower().endswith(MODEL_SUFFIXES)]
    finals = [s for s in models if not INTERMEDIATE.search(s.rfilename)]
    if finals:
        return sorted(finals, key=lambda s: (s.rfilename.count("/"), s.rfilename))[:cap]
    if models:
        return sorted(models, key=lambda s: s.rfilename, reverse=True)[:cap]
    return [s for s in siblings if s.rfilename.lower().endswith(PICKLE_SUFFIXES)][:cap]


def _models(raw: Any) -> Iterator[ModelInfo]:
    for item in j.items(raw):
        try:
            yield ModelInfo.parse(item)
        except SourceError:
            continue


def _at_or_after(when: datetime | None, floor: datetime | None) -> bool:
    return floor is None or when is None or when >= floor


def _past(page: list[ModelInfo], floor: datetime | None, sort: str) -> bool:
    if floor is None:
        return False
    stamps = (m.created_at if sort == "createdAt" else m.last_modified for m in page)
    times = [t for t in stamps if t is not None]
    return bool(times) and min(times) < floor


def _hub_text(info: ModelInfo, readme: str) -> Iterator[TextField]:
    yield TextField("name", info.id.partition("/")[2] or info.id)
    card = info.card_data
    for prompt in j.strings(card.get("instance_prompt")):
        yield TextField("instance_prompt", prompt)
    for widget in j.items(card.get("widget")):
        if isinstance(widget, dict) and j.text(widget.get("text")):
            yield TextField("prompt", str(widget["text"]))
    tags = [*j.strings(card.get("tags")), *info.tags]
    for tag in dict.fromkeys(t for t in tags if not t.startswith(NOISE_TAG_PREFIXES)):
        yield TextField("tags", tag)
    body = _without_front_matter(readme).strip()
    if body:
        yield TextField("card", body[:MAX_CARD_CHARS])


def _without_front_matter(text: str) -> str:
    if not text.startswith("---"):
        return text
    end = text.find("\n---", 3)
    return text if end < 0 else text[end + 4 :]
