"""A fake Civitai: /api/v1/models (Newest, keyset cursor with the live skip bug; or a
``query`` search over names, tags, descriptions and trained words with an offset cursor and
pages left short by filters applied after the limit), /api/v1/models/{id},
/api/v1/model-versions/{id}, and /api/download/models/{id} redirecting (307) to the fake
storage host. Models can be deleted, hidden, taken down or archived, and versions
unpublished or made private (takedown tracking). Shapes follow hubs/civitai/*.json; URLs
echo the origin."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakehubs.faults import Faults
from tests.fakehubs.network import Network
from tests.fakehubs.storage import Blob, FakeStorage, Received, recording
from tests.modelfiles import fixture_bytes, shared_dir

_ids = itertools.count(5_000_000)


@dataclass
class CvFile:
    id: int
    name: str
    blob_key: str
    size: int
    sha256: str
    type: str = "Model"
    primary: bool = True
    only_autov2: bool = False  # older files: the hashes list AutoV2 without SHA256

    @property
    def hashes(self) -> dict[str, str]:
        autov2 = {"AutoV2": self.sha256[:10]}
        return autov2 if self.only_autov2 else {**autov2, "SHA256": self.sha256}


@dataclass
class CvVersion:
    id: int
    name: str
    published_at: datetime
    files: list[CvFile]
    trained_words: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    base_model: str = "SD 1.5"
    description: str | None = None
    status: str = "Published"
    availability: str = "Public"


@dataclass
class CvModel:
    id: int
    name: str
    versions: list[CvVersion]
    type: str = "LORA"
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    creator: str = "someone"
    hidden: bool = False  # unpublished or hidden by a moderator: 404 everywhere
    mode: str | None = None  # "TakenDown" or "Archived"

    @property
    def listable(self) -> bool:
        return not self.hidden and any(v.status == "Published" for v in self.versions)

    def matches(self, query: str) -> bool:
        """Every word of the query in the name, tags, description or trained words."""
        words = [w for v in self.versions for w in v.trained_words]
        text = " ".join([self.name, *self.tags, self.description or "", *words, self.creator])
        return all(word in text.lower() for word in query.lower().split())

    @property
    def last_version_at(self) -> datetime:
        return max(v.published_at for v in self.versions)


def cursor_key(model: CvModel) -> tuple[datetime, int]:
    return (model.last_version_at, model.id)


def format_cursor(model: CvModel) -> str:
    when = model.last_version_at.strftime("%Y-%m-%d %H:%M:%S.") + (
        f"{model.last_version_at.microsecond // 1000:03d}"
    )
    return f"{when}|{model.id}"


def parse_cursor(cursor: str) -> tuple[datetime, int]:
    when, _, model_id = cursor.rpartition("|")
    return datetime.strptime(when, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC), int(model_id)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass
class FakeCivitai:
    storage: FakeStorage
    faults: Faults = field(default_factory=Faults)
    network: Network = field(default_factory=Network)
    models: dict[int, CvModel] = field(default_factory=dict)
    cursor_skip: bool = True
    duplicate_across_pages: bool = False
    numeric_search_cursor: bool = False  # nextCursor as a JSON number (seen on other endpoints)
    show_unpublished: bool = False  # older deployments answered 200 with the version's status
    on_list: Callable[[FakeCivitai], None] | None = None
    received: list[Received] = field(default_factory=list)
    origin: str = ""
    # Showcase images each version lists beside its prompt images, as real versions do
    # (10-20, each with its blurhash and sizes): a page of 100 models is then ~1 MB, as on
    # the real hub, and never arrives in one read.
    gallery_images: int = 16

    # -- content ----------------------------------------------------------------------------

    def add_file(self, name: str, data: bytes | Blob) -> CvFile:
        blob = data if isinstance(data, Blob) else Blob.whole(data)
        key = self.storage.put(f"cv-{next(_ids)}", blob)
        digest = blob.sha256.upper()
        return CvFile(id=next(_ids), name=name, blob_key=key, size=blob.size, sha256=digest)

    def add_upload(
        self,
        name: str,
        data: bytes | Blob,
        *,
        published_at: datetime,
        model_id: int | None = None,
        **version: Any,
    ) -> CvVersion:
        """A new version (of a new model, or of ``model_id``) with one primary file."""
        file = self.add_file(f"{name.lower().replace(' ', '_')}.safetensors", data)
        v = CvVersion(
            id=next(_ids), name="v1.0", published_at=published_at, files=[file], **version
        )
        if model_id is not None and model_id in self.models:
            self.models[model_id].versions.append(v)
        else:
            mid = model_id or next(_ids)
            self.models[mid] = CvModel(id=mid, name=name, versions=[v])
        return v

    def version_ids(self) -> set[str]:
        return {str(v.id) for m in self.models.values() for v in m.versions}

    # -- app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        middlewares = [recording(self.received), self.faults.middleware, self.network.middleware]
        app = web.Application(middlewares=middlewares)
        app.router.add_get("/api/v1/models", self._list)
        app.router.add_get("/api/v1/models/{id}", self._model)
        app.router.add_get("/api/v1/model-versions/{id}", self._version)
        app.router.add_get("/api/download/models/{id}", self._download)
        return app

    async def _list(self, request: web.Request) -> web.Response:
        if self.on_list is not None:
            self.on_list(self)
        if "query" in request.query:
            return self._search(request)
        types = set(request.query.getall("types", []))
        if request.query.get("sort") != "Newest" or not types:
            return _json({"error": "this fake answers sort=Newest with types only"}, 400)
        limit = int(request.query.get("limit", "100"))
        rows = sorted(
            (m for m in self.models.values() if m.type in types and m.listable),
            key=cursor_key,
            reverse=True,
        )
        cursor = request.query.get("cursor")
        if cursor:
            key = parse_cursor(cursor)
            older = [m for m in rows if cursor_key(m) < key]
            newer = [m for m in rows if cursor_key(m) > key]
            rows = ([newer[-1]] if self.duplicate_across_pages and newer else []) + older
        page, metadata = rows[:limit], {}
        if len(rows) > limit:
            boundary = rows[limit] if self.cursor_skip else rows[limit - 1]
            metadata["nextCursor"] = format_cursor(boundary)
            metadata["nextPage"] = f"{self.origin}/api/v1/models?cursor={metadata['nextCursor']}"
        return _json({"items": [self._item(m) for m in page], "metadata": metadata})

    def _search(self, request: web.Request) -> web.Response:
        """Search pages by offset (the cursor is the offset as a string); hidden models and
        unpublished versions are dropped after the page is cut, so a page can come back
        short, or empty, with a ``nextCursor`` (civitai/civitai#1848)."""
        if "page" in request.query:
            return _json({"error": "Cannot use page param with query search"}, 400)
        types = set(request.query.getall("types", [])) or {m.type for m in self.models.values()}
        query, limit = request.query["query"], int(request.query.get("limit", "100"))
        cursor = request.query.get("cursor", "0")
        if not cursor.isdigit():
            return _json({"error": f"Invalid cursor: {cursor}"}, 400)
        rows = sorted(
            (m for m in self.models.values() if m.type in types and m.matches(query)),
            key=cursor_key,
            reverse=True,
        )
        offset = int(cursor)
        page, metadata = rows[offset : offset + limit], {}
        if len(rows) > offset + limit:
            following = offset + limit
            metadata["nextCursor"] = following if self.numeric_search_cursor else str(following)
            metadata["nextPage"] = f"{self.origin}/api/v1/models?query={query}&cursor={following}"
        items = [self._item(m) for m in page if m.listable]
        return _json({"items": items, "metadata": metadata})

    async def _model(self, request: web.Request) -> web.Response:
        model = self.models.get(int(request.match_info["id"]))
        if model is None or model.hidden:
            return _json({"error": f"No model with id {request.match_info['id']}"}, 404)
        return _json(self._item(model))

    async def _version(self, request: web.Request) -> web.Response:
        found = self._find_version(int(request.match_info["id"]))
        if found is None or found[0].hidden:
            return _json({"error": "Model not found"}, 404)
        model, version = found
        if version.status != "Published" and not self.show_unpublished:
            return _json({"error": "Model not found"}, 404)
        body = self._version_json(version, with_meta=True)
        body.update(
            modelId=model.id,
            model={
                "name": model.name,
                "type": model.type,
                "nsfw": False,
                "poi": False,
                **({"mode": model.mode} if model.mode else {}),
            },
            status=version.status,
        )
        return _json(body)

    async def _download(self, request: web.Request) -> web.Response:
        found = self._find_version(int(request.match_info["id"]))
        if found is None:
            return _json({"error": "File not found"}, 404)
        files = found[1].files
        wanted = request.query.get("fileId")
        file = next((f for f in files if str(f.id) == wanted), None) if wanted else files[0]
        if file is None:
            return _json({"error": "File not found"}, 404)
        location = self.storage.url_for(file.blob_key)
        return web.Response(
            status=307, headers={"Location": location, "Cache-Control": "no-store, max-age=0"}
        )

    # -- shapes -----------------------------------------------------------------------------

    def _find_version(self, version_id: int) -> tuple[CvModel, CvVersion] | None:
        for model in self.models.values():
            for version in model.versions:
                if version.id == version_id:
                    return model, version
        return None

    def _item(self, model: CvModel) -> dict[str, Any]:
        return {
            "id": model.id,
            "name": model.name,
            "description": model.description,
            "type": model.type,
            "nsfw": False,
            "nsfwLevel": 1,
            "poi": False,
            "tags": model.tags,
            "creator": {"username": model.creator, "image": None},
            "stats": {"downloadCount": None, "thumbsUpCount": 0},
            "cosmetic": None,
            "modelVersions": [
                self._version_json(v, with_meta=False)
                for v in model.versions
                if v.status == "Published"
            ],
            **({"mode": model.mode} if model.mode else {}),
        }

    def _version_json(self, version: CvVersion, *, with_meta: bool) -> dict[str, Any]:
        url = f"{self.origin}/api/download/models/{version.id}"
        images = [
            {
                "url": f"https://image.example/{i}.jpeg",
                "nsfwLevel": 1,
                "hasMeta": True,
                **({"meta": {"prompt": p, "seed": 1}} if with_meta else {}),
            }
            for i, p in enumerate(version.prompts)
        ]
        images += [gallery_image(version.id, i) for i in range(self.gallery_images)]
        files = [
            {
                "id": f.id,
                "sizeKB": f.size / 1024,
                "name": f.name,
                "type": f.type,
                "metadata": {"format": "SafeTensor", "fp": "fp16"},
                "hashes": f.hashes,
                "downloadUrl": url if f.primary else f"{url}?fileId={f.id}",
                **({"primary": True} if f.primary else {}),
            }
            for f in version.files
        ]
        return {
            "id": version.id,
            "index": 0,
            "name": version.name,
            "baseModel": version.base_model,
            "publishedAt": iso(version.published_at),
            "trainedWords": version.trained_words,
            "description": version.description,
            "files": files,
            "images": images,
            "downloadUrl": url,
            "availability": version.availability,
            "paidAccess": None,
        }


def gallery_image(version_id: int, n: int) -> dict[str, Any]:
    """A showcase image as the hub lists it (no generation data: nothing to screen)."""
    image_id = version_id * 100 + n
    return {
        "url": f"https://image.example/xG1nkqKTMzGDvpLrqFT7WA/{image_id}-{n:02d}/width=832/x.jpeg",
        "nsfwLevel": 1,
        "width": 832,
        "height": 1216,
        "hash": "U9F~r]Rj00t7~qofIUWB00WB%Mof?bj[M{of",
        "type": "image",
        "metadata": {"hash": "U9F~r]Rj00t7~qofIUWB00WB%Mof", "size": 1_204_331, "width": 832},
        "minor": False,
        "poi": False,
        "availability": "Public",
        "hasMeta": False,
        "hasPositivePrompt": False,
        "onSite": False,
        "remixOfId": None,
    }


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=json.dumps)


def seed_from_fixtures(fake: FakeCivitai) -> None:
    """The two fixture pages (plus the model the cursor skips) with real header bytes where
    hubs/safetensors has them and a small generated LoRA elsewhere."""
    hubs = shared_dir() / "hubs" / "civitai"
    pages = [json.loads((hubs / f"models_page_{n}.json").read_text()) for n in (1, 2)]
    by_file = {3104418: "kohya_sd15_style_lora", 3103470: "kohya_sdxl_lora"}
    version_detail = json.loads((hubs / "model_version.json").read_text())
    prompts = {
        version_detail["id"]: [
            i["meta"]["prompt"] for i in version_detail["images"] if i.get("meta")
        ]
    }
    for item in [i for page in pages for i in page["items"]]:
        versions = []
        for v in item["modelVersions"]:
            files = []
            for f in v["files"]:
                data = (
                    fixture_bytes(by_file[f["id"]])
                    if f["id"] in by_file
                    else generic_lora(f["name"])
                )
                cv = fake.add_file(f["name"], data)
                cv.id, cv.type, cv.primary = f["id"], f["type"], bool(f.get("primary"))
                files.append(cv)
            when = datetime.fromisoformat(v["publishedAt"].replace("Z", "+00:00"))
            versions.append(
                CvVersion(
                    v["id"],
                    v["name"],
                    when,
                    files,
                    v["trainedWords"],
                    prompts.get(v["id"], []),
                    v["baseModel"],
                    v["description"],
                )
            )
        fake.models[item["id"]] = CvModel(
            item["id"],
            item["name"],
            versions,
            item["type"],
            item["description"],
            item["tags"],
            item["creator"]["username"],
        )
    skipped_at = datetime(2026, 8, 11, 21, 4, 17, 352000, tzinfo=UTC)
    fake.add_upload(
        "Skipped DoRA", generic_lora("skipped"), published_at=skipped_at, model_id=3213876
    )
    fake.models[3213876].type = "DoRA"


def generic_lora(name: str, **metadata: str) -> bytes:
    """A small kohya-style SD1 LoRA (two modules) whose header names ``name``."""
    from tests.modelfiles import build_safetensors

    base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
    tensors = {
        f"{base}.lora_down.weight": ("F16", (4, 768)),
        f"{base}.lora_up.weight": ("F16", (320, 4)),
        f"{base}.alpha": ("F16", ()),
    }
    return build_safetensors(tensors, {"ss_output_name": name, **metadata})


def minutes_after(start: datetime, n: float) -> datetime:
    return start + timedelta(minutes=n)
