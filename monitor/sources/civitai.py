"""Civitai: the newest LoRA, LoCon, DoRA and checkpoint versions, NSFW included.

The ``sort=Newest`` feed orders models by the time of their latest version and pages with a
cursor that drops one model at every page boundary (civitai/civitai#1372, still in the
2026 source), and the edge serves pages up to five minutes old. So each poll reads from the
top until it is ``overlap_s`` past the stored high-water mark, fetches the model each
``nextCursor`` names (``…|<modelId>``) when no page showed it, and leaves duplicates to the
version-id key. Headers are read with one Range request through the download redirect;
the API key goes to Civitai's own host only, never to the storage host it redirects to.

A hub history search is the same endpoint with ``query=`` (an offset cursor, pages that can
come back short or empty); a takedown check reads the version and its model again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from yarl import URL

from detectors.errors import SourceError, SourceRejected
from detectors.results import JSONValue, TextField
from monitor.settings import CivitaiSettings
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
from monitor.sources.html_text import html_to_text
from monitor.sources.http import Credential, HttpClient

log = logging.getLogger(__name__)

MODEL_TYPES = ("LORA", "LoCon", "DoRA", "Checkpoint")
PAGE_LIMIT = 100
OVERLAP_S = 3600.0  # edge cache (5 min) plus publishing lag, with room to spare
MAX_PAGES = 20
FIRST_POLL_PAGES = 1
SCREENED_FILE_TYPES = frozenset({"Model", "Pruned Model"})
# What takedown tracking reads as gone: the API's 404 covers deleted, unpublished and hidden
# versions alike; 410 is an archived file.
GONE_STATUSES = frozenset({404, 410})
GONE_MODES = {"TakenDown": "taken down", "Archived": "archived"}


@dataclass(frozen=True, slots=True)
class CivitaiVersion:
    """A model version as the list or ``/model-versions/{id}`` gives it (tolerant read)."""

    id: int
    model_id: int | None
    name: str
    published_at: datetime | None
    base_model: str | None
    description: str | None
    trained_words: tuple[str, ...]
    files: tuple[Mapping[str, Any], ...]
    prompts: tuple[str, ...]
    model_name: str | None = None

    @classmethod
    def parse(cls, raw: Any, model_id: int | None = None) -> CivitaiVersion:
        obj = j.obj(raw, "model version")
        model = j.sub(obj, "model")
        return cls(
            id=j.req_int(obj.get("id"), "version id"),
            model_id=j.opt_int(obj.get("modelId")) or model_id,
            name=j.text(obj.get("name")) or "",
            published_at=j.parse_time(obj.get("publishedAt")),
            base_model=j.text(obj.get("baseModel")),
            description=j.text(obj.get("description")),
            trained_words=tuple(j.strings(obj.get("trainedWords"))),
            files=tuple(f for f in j.items(obj.get("files")) if isinstance(f, dict)),
            prompts=tuple(_image_prompts(obj.get("images"))),
            model_name=j.text(model.get("name")),
        )


@dataclass(frozen=True, slots=True)
class CivitaiModel:
    """A model from ``/models`` or ``/models/{id}``: its text and its versions."""

    id: int
    name: str
    type: str | None
    description: str | None
    tags: tuple[str, ...]
    creator: str | None
    versions: tuple[CivitaiVersion, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, raw: Any) -> CivitaiModel:
        obj = j.obj(raw, "model")
        model_id = j.req_int(obj.get("id"), "model id")
        creator = j.sub(obj, "creator")
        return cls(
            id=model_id,
            name=j.text(obj.get("name")) or str(model_id),
            type=j.text(obj.get("type")),
            description=j.text(obj.get("description")),
            tags=tuple(j.strings(obj.get("tags"))),
            creator=j.text(creator.get("username")),
            versions=tuple(_versions(obj.get("modelVersions"), model_id)),
        )

    @property
    def newest(self) -> datetime | None:
        times = [v.published_at for v in self.versions if v.published_at is not None]
        return max(times, default=None)

    def listed(self, version: CivitaiVersion) -> ListedUpload:
        hint: dict[str, JSONValue] = {
            "model_id": self.id,
            "model_name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "creator": self.creator,
        }
        position = version.published_at.isoformat() if version.published_at else None
        return ListedUpload(str(version.id), f"{self.name} {version.name}".strip(), position, hint)


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of ``/api/v1/models``: its models and the cursor to the next page."""

    models: tuple[CivitaiModel, ...]
    next_cursor: str | None

    @classmethod
    def parse(cls, raw: Any) -> FeedPage:
        obj = j.obj(raw, "models page")
        metadata = j.sub(obj, "metadata")
        cursor = metadata.get("nextCursor")
        models = []
        for item in j.items(obj.get("items")):
            try:
                models.append(CivitaiModel.parse(item))
            except SourceRejected as exc:  # one odd item does not sink the page
                log.warning("civitai.item.skipped", extra={"source": "civitai", "reason": str(exc)})
        next_cursor = str(cursor) if isinstance(cursor, str | int) and cursor != "" else None
        return cls(models=tuple(models), next_cursor=next_cursor)


class CivitaiSource:
    """The Civitai adapter of the ``Source`` port (aiohttp through ``HttpClient``)."""

    name = "civitai"

    def __init__(
        self,
        settings: CivitaiSettings,
        http: HttpClient,
        *,
        page_limit: int = PAGE_LIMIT,
        overlap_s: float = OVERLAP_S,
        max_pages: int = MAX_PAGES,
        first_poll_pages: int = FIRST_POLL_PAGES,
    ) -> None:
        self._base = URL(settings.base_url.rstrip("/") + "/")
        key = settings.api_key.get_secret_value() if settings.api_key else None
        self._credential = Credential.for_base(settings.base_url, key)
        self._http = http
        self._limit, self._overlap = page_limit, timedelta(seconds=overlap_s)
        self._max_pages, self._first_pages = max_pages, first_poll_pages

    async def list_new(self, cursor: Cursor) -> Listing:
        mark = j.parse_time(cursor.high_water)
        floor = mark - self._overlap if mark else None
        models, cursors, error = await self._read_feed(floor)
        models.extend(await self._recover_skipped(cursors, {m.id for m in models}))
        uploads = _dedupe(_new_versions(models, floor))
        newest = max((m.newest for m in models if m.newest), default=None)
        high = max(filter(None, (mark, newest)), default=None)
        return Listing(
            uploads=tuple(uploads),
            cursor=Cursor(high.isoformat() if high else None),
            complete=error is None,
            error=error,
        )

    async def hydrate(self, listed: ListedUpload) -> Upload:
        reply = await self._http.get_json(
            self._api(f"model-versions/{listed.upload_id}"), credential=self._credential
        )
        version = CivitaiVersion.parse(reply.data)
        files = tuple(self._remote_files(version.files))
        if not files:
            raise SourceRejected(f"civitai version {listed.upload_id} lists no files")
        hint = listed.hint
        model_name = j.text(hint.get("model_name")) or version.model_name or listed.name
        return Upload(
            upload_id=str(version.id),
            name=f"{model_name} {version.name}".strip(),
            files=files,
            hub_text=tuple(_hub_text(model_name, hint, version)),
            url=str(self._base.join(URL(f"models/{version.model_id}?modelVersionId={version.id}"))),
            uploader=j.text(hint.get("creator")),
            base_model=version.base_model,
        )

    async def model_upload(self, model_id: str) -> ListedUpload:
        """The newest published version of a model (for a pasted ``/models/<id>`` URL)."""
        reply = await self._http.get_json(
            self._api(f"models/{model_id}"), credential=self._credential
        )
        model = CivitaiModel.parse(reply.data)
        dated = [v for v in model.versions if v.published_at is not None]
        if not dated:
            raise SourceRejected(f"civitai model {model_id} has no published version")
        return model.listed(max(dated, key=lambda v: v.published_at or datetime.min))

    def search_terms(self, name: str) -> tuple[str, ...]:
        """Civitai's search matches words in model names, tags and descriptions (typos
        forgiven), so a name is searched as it is written."""
        term = " ".join(name.split())
        return (term,) if term else ()

    async def search(self, query: str, after: str | None) -> SearchPage:
        """One page of ``/api/v1/models?query=…`` (all versions of each model; the cursor is
        an offset there, opaque here); a model a ``…|<id>`` cursor skipped is fetched."""
        params = [("query", query), *(("types", t) for t in MODEL_TYPES)]
        params += [("nsfw", "true"), ("limit", str(self._limit))]
        if after is not None:
            params.append(("cursor", after))
        reply = await self._http.get_json(
            self._api("models"), params=params, credential=self._credential
        )
        page = FeedPage.parse(reply.data)
        models = list(page.models)
        if page.next_cursor is not None:
            seen = {m.id for m in models}
            models.extend(await self._recover_skipped([page.next_cursor], seen))
        uploads = _dedupe(_new_versions(models, None))
        return SearchPage(tuple(uploads), page.next_cursor)

    async def hub_status(self, target: CheckTarget) -> HubStatus:
        """Gone when the version or its model answers 404/410, or says it is unpublished,
        private, archived or taken down; anything else from the hub leaves it unknown."""
        version = await self._status_of(f"model-versions/{target.upload_id}", "version")
        if isinstance(version, HubStatus):
            return version
        state = j.text(version.get("status"))
        if state is not None and state != "Published":
            return HubStatus("unpublished", f"the version's status is {state}")
        if j.text(version.get("availability")) == "Private":
            return HubStatus("hidden", "the version is private")
        gone = _mode_gone(j.sub(version, "model"))
        model_id = j.opt_int(version.get("modelId"))
        if gone is None and model_id is not None:
            model = await self._status_of(f"models/{model_id}", "model")
            gone = model if isinstance(model, HubStatus) else _mode_gone(model)
        return gone or HubStatus("up")

    async def _status_of(self, path: str, what: str) -> dict[str, Any] | HubStatus:
        try:
            reply = await self._http.get_json(self._api(path), credential=self._credential)
        except SourceRejected as exc:
            if exc.status in GONE_STATUSES:
                return HubStatus("removed", f"the {what} answers HTTP {exc.status}")
            raise
        return j.obj(reply.data, what)

    async def read_bytes(self, file: RemoteFile, start: int, length: int) -> Fetched:
        return await self._http.get_range(
            file.url, start=start, length=length, credential=self._credential
        )

    async def download(self, file: RemoteFile, dest: Path) -> int:
        return await self._http.download(file.url, dest, credential=self._credential)

    # -- listing --------------------------------------------------------------------------

    async def _read_feed(
        self, floor: datetime | None
    ) -> tuple[list[CivitaiModel], list[str], str | None]:
        models: list[CivitaiModel] = []
        cursors: list[str] = []
        cursor: str | None = None
        pages = self._max_pages if floor else self._first_pages
        for _ in range(pages):
            try:
                page = await self._page(cursor)
            except SourceError as exc:
                log.warning(
                    "civitai.feed.incomplete", extra={"source": self.name, "reason": str(exc)}
                )
                return models, cursors, str(exc)
            models.extend(page.models)
            if page.next_cursor is None or _past(page, floor):
                break
            cursor = page.next_cursor
            cursors.append(cursor)
        return models, cursors, None

    async def _page(self, cursor: str | None) -> FeedPage:
        params = [("types", t) for t in MODEL_TYPES]
        params += [("sort", "Newest"), ("nsfw", "true"), ("limit", str(self._limit))]
        if cursor is not None:
            params.append(("cursor", cursor))
        reply = await self._http.get_json(
            self._api("models"), params=params, credential=self._credential
        )
        return FeedPage.parse(reply.data)

    async def _recover_skipped(self, cursors: Iterable[str], seen: set[int]) -> list[CivitaiModel]:
        """Models a ``nextCursor`` named that no page returned (the cursor-skip bug)."""
        recovered = []
        for model_id in dict.fromkeys(_cursor_model_id(c) for c in cursors):
            if model_id is None or model_id in seen:
                continue
            try:
                reply = await self._http.get_json(
                    self._api(f"models/{model_id}"), credential=self._credential
                )
                recovered.append(CivitaiModel.parse(reply.data))
            except SourceError as exc:
                log.warning(
                    "civitai.skipped_model.unrecovered",
                    extra={"source": self.name, "model_id": model_id, "reason": str(exc)},
                )
        return recovered

    # -- hydrating ------------------------------------------------------------------------

    def _remote_files(self, files: Iterable[Mapping[str, Any]]) -> Iterator[RemoteFile]:
        ordered = sorted(files, key=lambda f: f.get("primary") is not True)
        screened = False
        for raw in ordered:
            url = j.text(raw.get("downloadUrl"))
            name = j.text(raw.get("name"))
            if url is None or name is None:
                continue
            screen = not screened and j.text(raw.get("type")) in SCREENED_FILE_TYPES
            screened = screened or screen
            yield RemoteFile(
                name=name,
                url=str(self._on_base(URL(url))),
                size=_size_bytes(raw.get("sizeKB")),
                hashes=_hashes(raw.get("hashes")),
                screen=screen,
            )

    def _on_base(self, url: URL) -> URL:
        """A hub URL moved onto the configured base (the API echoes its Host header)."""
        return self._base.join(URL(url.raw_path_qs.lstrip("/"), encoded=True))

    def _api(self, path: str) -> URL:
        return self._base.join(URL(f"api/v1/{path}"))


def _mode_gone(model: Mapping[str, Any]) -> HubStatus | None:
    """A model Civitai archived (files removed) or took down, from its ``mode``."""
    mode = j.text(model.get("mode"))
    if mode in GONE_MODES:
        return HubStatus("removed", f"the model is {GONE_MODES[mode]}")
    if model.get("status") not in (None, "Published"):
        return HubStatus("unpublished", f"the model's status is {model.get('status')}")
    return None


def _past(page: FeedPage, floor: datetime | None) -> bool:
    """True once a page reaches models older than the floor (never on a short page alone)."""
    if floor is None:
        return False
    times = [m.newest for m in page.models if m.newest is not None]
    return bool(times) and min(times) < floor


def _new_versions(models: Iterable[CivitaiModel], floor: datetime | None) -> Iterator[ListedUpload]:
    for model in models:
        for version in model.versions:
            if floor is None or version.published_at is None or version.published_at >= floor:
                yield model.listed(version)


def _dedupe(uploads: Iterable[ListedUpload]) -> list[ListedUpload]:
    unique: dict[str, ListedUpload] = {}
    for upload in uploads:
        unique.setdefault(upload.upload_id, upload)
    return sorted(unique.values(), key=lambda u: u.position or "", reverse=True)


def _cursor_model_id(cursor: str) -> int | None:
    tail = cursor.rpartition("|")[2]
    return int(tail) if "|" in cursor and tail.isascii() and tail.isdigit() else None


def _hub_text(
    model_name: str, hint: Mapping[str, JSONValue], version: CivitaiVersion
) -> Iterator[TextField]:
    yield TextField("name", model_name)
    if version.name:
        yield TextField("versionName", version.name)
    for html in (hint.get("description"), version.description):
        text = html_to_text(html) if isinstance(html, str) else ""
        if text:
            yield TextField("description", text)
    for word in version.trained_words:
        yield TextField("trainedWords", word)
    for tag in j.strings(hint.get("tags")):
        yield TextField("tags", tag)
    for prompt in version.prompts:
        yield TextField("prompt", prompt)


def _image_prompts(images: Any) -> Iterator[str]:
    for image in j.items(images):
        meta = image.get("meta") if isinstance(image, dict) else None
        prompt = meta.get("prompt") if isinstance(meta, dict) else None
        if isinstance(prompt, str) and prompt.strip():
            yield prompt


def _versions(raw: Any, model_id: int) -> Iterator[CivitaiVersion]:
    for item in j.items(raw):
        try:
            yield CivitaiVersion.parse(item, model_id)
        except SourceRejected:
            continue


def _hashes(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k).lower(): str(v).upper() for k, v in raw.items() if isinstance(v, str) and v}


def _size_bytes(size_kb: Any) -> int | None:
    if isinstance(size_kb, int | float) and not isinstance(size_kb, bool) and 0 <= size_kb < 1e15:
        return round(size_kb * 1024)
    return None
