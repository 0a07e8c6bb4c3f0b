"""A fake Hugging Face Hub: /api/models (sort=createdAt or lastModified, keyset cursor, Link
paging with the request's origin; ``search`` as a case-insensitive substring of the repo id),
/api/models/{repo} (``blobs=true`` adds sizes and LFS sha256), and
/{repo}/resolve/{rev}/{path}: 302 to the fake storage host for LFS files, a relative 307
to /api/resolve-cache/… for small ones. Repos can be deleted, made private (401
``RepoNotFound``), gated or disabled (takedown tracking). Shapes follow
hubs/huggingface/*.json."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tests.fakehubs.civitai import iso
from tests.fakehubs.faults import Faults
from tests.fakehubs.network import Network
from tests.fakehubs.storage import Blob, FakeStorage, Received, recording
from tests.modelfiles import fixture_bytes, shared_dir

_ids = itertools.count(1)


@dataclass
class HfRepo:
    id: str
    created_at: datetime
    tags: list[str]
    card_data: dict[str, Any] = field(default_factory=dict)
    readme: str = ""
    lfs: dict[str, str] = field(default_factory=dict)  # rfilename -> storage key
    library_name: str | None = None
    gated: bool | str = False  # or "auto" / "manual"
    disabled: bool = False
    private: bool = False  # answers 401 RepoNotFound to others, and is never listed
    sha: str = field(default_factory=lambda: hashlib.sha1(str(next(_ids)).encode()).hexdigest())
    object_id: str = field(default_factory=lambda: f"{next(_ids):024x}")
    last_modified: datetime | None = None  # the last commit (or visibility change)

    @property
    def modified_at(self) -> datetime:
        return self.last_modified or self.created_at

    def commit(self, when: datetime) -> None:
        """A new commit: a new sha and lastModified."""
        self.sha = hashlib.sha1(f"{self.sha}{when.isoformat()}".encode()).hexdigest()
        self.last_modified = when


@dataclass
class FakeHuggingFace:
    storage: FakeStorage
    faults: Faults = field(default_factory=Faults)
    network: Network = field(default_factory=Network)
    repos: dict[str, HfRepo] = field(default_factory=dict)
    on_list: Callable[[FakeHuggingFace], None] | None = None
    received: list[Received] = field(default_factory=list)

    def add_repo(
        self,
        repo_id: str,
        created_at: datetime,
        files: Mapping[str, bytes | Blob],
        *,
        tags: list[str] | None = None,
        card_data: dict[str, Any] | None = None,
        readme: str = "",
        library_name: str | None = None,
    ) -> HfRepo:
        repo = HfRepo(
            repo_id,
            created_at,
            tags if tags is not None else ["lora", "text-to-image"],
            card_data or {},
            readme,
            library_name=library_name,
        )
        for name, data in files.items():
            blob = data if isinstance(data, Blob) else Blob.whole(data)
            repo.lfs[name] = self.storage.put(f"hf-{next(_ids)}", blob)
        self.repos[repo_id] = repo
        return repo

    def push_file(self, repo_id: str, name: str, data: bytes | Blob, when: datetime) -> None:
        """A commit that adds a model file to an existing repo."""
        repo = self.repos[repo_id]
        blob = data if isinstance(data, Blob) else Blob.whole(data)
        repo.lfs[name] = self.storage.put(f"hf-{next(_ids)}", blob)
        repo.commit(when)

    def make_public(self, repo_id: str, when: datetime) -> None:
        """A private repo made public (the hub counts it as a modification)."""
        repo = self.repos[repo_id]
        repo.private = False
        repo.last_modified = when

    def app(self) -> web.Application:
        middlewares = [recording(self.received), self.faults.middleware, self.network.middleware]
        app = web.Application(middlewares=middlewares)
        app.router.add_get("/api/models", self._list)
        app.router.add_get("/api/models/{owner}/{name}", self._info)
        app.router.add_get("/api/resolve-cache/models/{owner}/{name}/{sha}/{path:.+}", self._small)
        app.router.add_get("/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        return app

    async def _list(self, request: web.Request) -> web.Response:
        if self.on_list is not None:
            self.on_list(self)
        tags = request.query.getall("filter", [])
        pipeline = request.query.get("pipeline_tag")
        rows = [r for r in self.repos.values() if all(t in r.tags for t in tags) and not r.private]
        search = request.query.get("search", "").lower()
        rows = [r for r in rows if search in r.id.lower()]
        if pipeline:
            rows = [r for r in rows if pipeline in r.tags]
        by_modified = request.query.get("sort") == "lastModified"

        def when(r: HfRepo) -> datetime:
            return r.modified_at if by_modified else r.created_at

        rows.sort(key=lambda r: (when(r), r.object_id), reverse=True)
        if "cursor" in request.query:
            after = json.loads(base64.urlsafe_b64decode(request.query["cursor"]))
            rows = [r for r in rows if (iso(when(r)), r.object_id) < tuple(after)]
        limit = int(request.query.get("limit", "1000"))
        page, headers = rows[:limit], {}
        if len(rows) > limit:
            last = page[-1]
            token = base64.urlsafe_b64encode(
                json.dumps([iso(when(last)), last.object_id]).encode()
            ).decode()
            query = [(k, v) for k, v in request.query.items() if k != "cursor"]
            next_url = f"{request.url.origin()}/api/models?{urlencode([*query, ('cursor', token)])}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return web.json_response([self._info_json(r, blobs=False) for r in page], headers=headers)

    async def _info(self, request: web.Request) -> web.Response:
        repo = self.repos.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        if repo is None or repo.private:
            return _not_found()
        return web.json_response(self._info_json(repo, blobs=request.query.get("blobs") == "true"))

    async def _resolve(self, request: web.Request) -> web.Response:
        repo = self.repos.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        path = request.match_info["path"]
        if repo is None:
            return _not_found()
        if path in repo.lfs:
            blob = self.storage.blobs[repo.lfs[path]]
            return web.Response(
                status=302,
                headers={
                    "Location": self.storage.url_for(repo.lfs[path]),
                    "X-Repo-Commit": repo.sha,
                    "X-Linked-Size": str(blob.size),
                },
            )
        if path == "README.md" and repo.readme:
            location = f"/api/resolve-cache/models/{repo.id}/{repo.sha}/README.md"
            return web.Response(status=307, headers={"Location": location})
        return web.Response(status=404, headers={"X-Error-Code": "EntryNotFound"})

    async def _small(self, request: web.Request) -> web.Response:
        repo = self.repos.get(f"{request.match_info['owner']}/{request.match_info['name']}")
        if repo is None or request.match_info["path"] != "README.md":
            return _not_found()
        return web.Response(text=repo.readme)

    def _info_json(self, repo: HfRepo, *, blobs: bool) -> dict[str, Any]:
        siblings: list[dict[str, Any]] = [{"rfilename": ".gitattributes"}]
        if repo.readme:
            siblings.append(
                {"rfilename": "README.md", **({"size": len(repo.readme)} if blobs else {})}
            )
        for name, key in repo.lfs.items():
            entry: dict[str, Any] = {"rfilename": name}
            if blobs:
                blob = self.storage.blobs[key]
                digest = blob.sha256
                entry.update(size=blob.size, lfs={"sha256": digest, "size": blob.size})
            siblings.append(entry)
        body = {
            "_id": repo.object_id,
            "id": repo.id,
            "modelId": repo.id,
            "author": repo.id.split("/")[0],
            "sha": repo.sha,
            "createdAt": iso(repo.created_at),
            "lastModified": iso(repo.modified_at),
            "private": repo.private,
            "gated": repo.gated,
            "disabled": repo.disabled,
            "tags": repo.tags,
            "pipeline_tag": "text-to-image",
            "siblings": siblings,
            "cardData": repo.card_data,
            "downloads": 0,
            "likes": 0,
        }
        if repo.library_name:
            body["library_name"] = repo.library_name
        return body


def _not_found() -> web.Response:
    return web.json_response(
        {"error": "Repository not found"},
        status=401,
        headers={
            "X-Error-Code": "RepoNotFound",
            "X-Error-Message": "Invalid username or password.",
        },
    )


def seed_from_fixtures(fake: FakeHuggingFace) -> None:
    """The three repos of models_list.json with the fixture card and real header bytes."""
    hubs = shared_dir() / "hubs" / "huggingface"
    readme = (hubs / "README_hastmoor-linocut-flux.md").read_text()
    files = {
        "gallowmere-ai/hastmoor-linocut-flux": {
            "hastmoor_linocut_flux.safetensors": fixture_bytes("aitoolkit_flux_lora"),
            "hastmoor_linocut_flux_000001000.safetensors": fixture_bytes("aitoolkit_flux_lora"),
        },
        "pell-studio/soft-rimlight-sdxl": {
            "soft_rimlight_xl.safetensors": fixture_bytes("kohya_sdxl_lora"),
        },
        "tarn-w/mossgate-concept-lora": {},
    }
    for item in json.loads((hubs / "models_list.json").read_text()):
        when = datetime.fromisoformat(item["createdAt"].replace("Z", "+00:00"))
        fake.add_repo(
            item["id"],
            when,
            files[item["id"]],
            tags=item["tags"],
            card_data=item.get("cardData", {}),
            readme=readme if item["id"].startswith("gallowmere") else "# card\n",
            library_name=item.get("library_name"),
        )
