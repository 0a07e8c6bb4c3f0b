"""A seeded stylewatch for the web tests: a data dir with realistic uploads, findings,
evidence (one evidence sheet image), artists, users and API tokens, an app built on it,
and a small HTTP visitor that keeps its own cookies and CSRF token."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer
from argon2 import PasswordHasher
from PIL import Image, ImageDraw
from sqlmodel import Session, select

from detectors.results import ArtistMatch, Evidence, TextField
from monitor.runtime import Runtime, open_runtime
from monitor.settings import load_settings
from monitor.web.app import ServiceStatus, create_app
from monitor.web.passwords import Passwords, token_sha256
from storage.models import Evidence as EvidenceRow
from storage.records import FileRecord
from storage.users import UserStore

PASSWORD = "correct horse battery"
WEB_SECRET = "s3cret-web-key-for-tests"
HUB_SECRET = "civitai-SECRET-api-key"
MODERATOR_TOKEN = "sw_test_moderator_token_0123456789"
ARTIST_TOKEN = "sw_test_artist_token_0123456789"
# A cheap hasher: verification reads its cost from the stored hash, so tests stay fast.
CHEAP_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

XSS = (
    "<script>window.__xss=1</script>",
    '"><img src=x onerror="window.__xss=1">',
    "<svg/onload=window.__xss=1>",
    "'><iframe srcdoc='<script>parent.__xss=1</script>'>",
    "</textarea><script>window.__xss=1</script>",
)
XSS_URL = "javascript:window.__xss=1"

USERS = {
    "admin@example.org": ("admin", None),
    "mod@example.org": ("moderator", None),
    "mod2@example.org": ("moderator", None),
    "mira@example.org": ("artist", "Mira Okafor"),
    "wren@example.org": ("artist", "Tomasz Wren"),
}


@dataclass
class Seeded:
    """Ids of what `seed` made."""

    findings: dict[str, int] = field(default_factory=dict)  # label -> finding id
    artists: dict[str, int] = field(default_factory=dict)  # name -> artist id
    sheet_sha256: str = ""


def settings_for(data_dir: Path) -> Any:
    return load_settings(
        None,
        data_dir=data_dir,
        web={"secret_key": WEB_SECRET},
        sources={"civitai": {"enabled": False, "api_key": HUB_SECRET}},
    )


def evidence_sheet() -> bytes:
    """A small LoRA | base | references sheet, as the probe would store it."""
    img = Image.new("RGB", (600, 200), "white")
    draw = ImageDraw.Draw(img)
    for i, (label, colour) in enumerate(
        (("LoRA", "#6a8caf"), ("base", "#c0c0c0"), ("artist", "#5d7fa3"))
    ):
        draw.rectangle([i * 200 + 8, 8, i * 200 + 192, 168], fill=colour)
        draw.text((i * 200 + 12, 176), label, fill="black")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _artists(runtime: Runtime, seeded: Seeded) -> None:
    store = runtime.store
    for name, aliases, email in (
        ("Mira Okafor", ["mira_ok", "Okafor"], "mira@example.org"),
        ("Tomasz Wren", ["twren"], "wren@example.org"),
        (XSS[0] + "Vex", [XSS[1]], None),
    ):
        seeded.artists[name] = store.add_artist(name, aliases, email).id


def _upload(runtime: Runtime, upload_id: str, name: str, **kw: Any) -> int:
    source = kw.pop("source", "civitai")
    record, _ = runtime.store.record_upload(source, upload_id, name, **kw)
    return record.id


def _find(
    runtime: Runtime, upload_pk: int, artist_id: int, score: float, *evidence: tuple[str, str]
) -> int:
    match = ArtistMatch(
        artist_id, "", score, "metadata", tuple(Evidence(s, t) for s, t in evidence)
    )
    return runtime.store.record_findings(upload_pk, [match])[0].id


def _uploads(runtime: Runtime, seeded: Seeded) -> None:
    mira, wren = seeded.artists["Mira Okafor"], seeded.artists["Tomasz Wren"]
    vex = seeded.artists[XSS[0] + "Vex"]
    lora = FileRecord(
        filename="mira_okafor_style_v2.safetensors",
        sha256="ab" * 32,
        size=151_234_567,
        format="safetensors",
        kind="lora",
        base_family="sdxl",
        layout="kohya",
        metadata={
            "ss_tag_frequency": '{"img": {"mira_ok style": 48, "ink wash": 31}}',
            "ss_output_name": "mira_okafor_style_v2",
            "ss_num_train_images": "60",
        },
        hashes={"sha256": "ab" * 32, "autov2": "ab12cd34ef"},
    )
    pk = _upload(
        runtime,
        "918273",
        "Mira Okafor Style LoRA v2 — dreamy ink washes",
        url="https://civitai.com/models/412345?modelVersionId=918273",
        uploader="latentlad",
        kind="lora",
        base_family="sdxl",
        files=[lora],
        hub_text=[
            TextField(
                "description", "Trained on 48 paintings by Mira Okafor. Use trigger mira_ok style."
            ),
            TextField("trainedWords", "mira_ok style, ink wash"),
        ],
    )
    seeded.findings["mira_v2"] = _find(
        runtime,
        pk,
        mira,
        0.91,
        ("ss_tag_frequency", "mira_ok style"),
        ("description", "48 paintings by Mira Okafor"),
        ("style", "LoRA vs base vs references"),
    )
    pk = _upload(
        runtime,
        "hf:pixelmonk/okafor-watercolor",
        "Okafor-esque watercolor (SD1.5)",
        source="huggingface",
        url="https://huggingface.co/pixelmonk/okafor-watercolor",
        uploader="pixelmonk",
        kind="lora",
        base_family="sd1",
        hub_text=[TextField("tags", "watercolor, okafor, painterly")],
    )
    seeded.findings["okafor_wc"] = _find(runtime, pk, mira, 0.64, ("tags", "okafor"))
    pk = _upload(
        runtime,
        "771001",
        "wren_lines_xl",
        url="https://civitai.com/models/1?modelVersionId=771001",
        uploader="inkbot",
        kind="lycoris",
        base_family="sdxl",
        hub_text=[TextField("title", "twren line art XL")],
    )
    seeded.findings["wren"] = _find(runtime, pk, wren, 0.77, ("title", "twren line art XL"))
    pk = _upload(
        runtime,
        "666",
        XSS[0],
        url=XSS_URL,
        uploader=XSS[2],
        kind="lora",
        base_family="sd1",
        hub_text=[TextField("description", " ".join(XSS))],
        files=[FileRecord(filename="x.safetensors", metadata={"ss_tag_frequency": XSS[3]})],
    )
    seeded.findings["xss"] = _find(runtime, pk, vex, 0.5, *(("description", x) for x in XSS))


def _evidence_blob(runtime: Runtime, seeded: Seeded) -> None:
    seeded.sheet_sha256 = runtime.blobs.put(evidence_sheet())
    with Session(runtime.engine) as session, session.begin():
        row = session.exec(
            select(EvidenceRow).where(
                EvidenceRow.finding_id == seeded.findings["mira_v2"], EvidenceRow.source == "style"
            )
        ).one()
        row.blob_sha256 = seeded.sheet_sha256
        session.add(row)


def _users(runtime: Runtime) -> None:
    users = UserStore(runtime.engine)
    hashed = CHEAP_PASSWORDS.hash(PASSWORD)
    for email, (role, artist) in USERS.items():
        users.add_user(email, role, hashed, artist)  # type: ignore[arg-type]  # literal roles
    users.add_token("mod@example.org", "ci", token_sha256(MODERATOR_TOKEN))
    users.add_token("mira@example.org", "ci", token_sha256(ARTIST_TOKEN))


def seed(data_dir: Path) -> Seeded:
    """Build a data dir with everything the web tests use."""
    runtime = open_runtime(settings_for(data_dir))
    try:
        seeded = Seeded()
        _artists(runtime, seeded)
        _uploads(runtime, seeded)
        _evidence_blob(runtime, seeded)
        _users(runtime)
        return seeded
    finally:
        runtime.close()


def copy_env(template: Path, target: Path) -> Runtime:
    """A fresh copy of a seeded data dir, opened."""
    shutil.copytree(template, target)
    return open_runtime(settings_for(target))


def build_app(runtime: Runtime) -> web.Application:
    status = ServiceStatus(
        version="test",
        database="sqlite:///test.db",
        sources=("civitai",),
        store=runtime.store,
        ready=lambda: True,
        runtime=runtime,
    )
    return create_app(status, passwords=CHEAP_PASSWORDS)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    status: int
    text: str
    headers: Any
    location: str | None


class Visitor:
    """One browser-like client with its own cookie jar; remembers the last CSRF token."""

    def __init__(self, server: BaseTestServer, address: str | None = None) -> None:
        """``address``: a loopback address to connect from (127.0.0.2, …), so a test can
        come from many clients."""
        self.server = server
        connector = aiohttp.TCPConnector(local_addr=(address, 0)) if address else None
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), connector=connector
        )
        self.csrf = ""

    async def request(self, method: str, path: str, **kw: Any) -> Page:
        kw.setdefault("allow_redirects", False)
        async with self.http.request(method, self.server.make_url(path), **kw) as resp:
            body = await resp.read()
            text = body.decode(errors="replace")
            found = _CSRF.search(text) if resp.content_type == "text/html" else None
            if found:
                self.csrf = found.group(1)
            return Page(resp.status, text, resp.headers, resp.headers.get("Location"))

    async def get(self, path: str, **kw: Any) -> Page:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, data: Any = None, *, csrf: bool = True, **kw: Any) -> Page:
        if data is None and "json" not in kw:
            data = {}
        if csrf and isinstance(data, dict):
            data = {"csrf_token": self.csrf, **data}
        elif csrf and isinstance(data, list):
            data = [("csrf_token", self.csrf), *data]
        if data is not None:
            kw["data"] = data
        return await self.request("POST", path, **kw)

    async def login(self, email: str, password: str = PASSWORD) -> Page:
        await self.get("/login")
        return await self.post("/login", {"email": email, "password": password})

    async def close(self) -> None:
        await self.http.close()


# -- fixtures (imported by the web test modules) ----------------------------------------


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """One seeded data dir per test run; each test works on its own copy."""
    path = tmp_path_factory.mktemp("web-template") / "data"
    return path, seed(path)


@pytest.fixture
def seeded(web_template: tuple[Path, Seeded]) -> Seeded:
    return web_template[1]


@pytest.fixture
def web_runtime(web_template: tuple[Path, Seeded], tmp_path: Path) -> Iterator[Runtime]:
    runtime = copy_env(web_template[0], tmp_path / "data")
    yield runtime
    runtime.close()


@pytest.fixture
async def web_server(web_runtime: Runtime) -> AsyncIterator[BaseTestServer]:
    async with TestServer(build_app(web_runtime)) as server:
        yield server


@pytest.fixture
async def visitors(web_server: BaseTestServer) -> AsyncIterator[Callable[..., Awaitable[Visitor]]]:
    """Makes visitors (signed in when given an email); closes them afterwards."""
    made: list[Visitor] = []

    async def make(email: str | None = None) -> Visitor:
        visitor = Visitor(web_server)
        made.append(visitor)
        if email is not None:
            page = await visitor.login(email)
            assert page.status == 303, page.text
        return visitor

    yield make
    for visitor in made:
        await visitor.close()
