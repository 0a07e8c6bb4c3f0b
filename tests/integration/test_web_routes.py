"""Every route keeps its door: anonymous visitors and users of the wrong role are refused
(pages: redirect to /login or 403; API: 401 or 403). Plus the JSON API, its OpenAPI
description, /metrics and the public health routes."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.web_env import (  # noqa: F401
    ARTIST_TOKEN,
    MODERATOR_TOKEN,
    Seeded,
    build_app,
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)

PUBLIC = {
    *("/", "/livez", "/readyz", "/metrics", "/login", "/logout", "/api/v1/openapi.json"),
    "/login/forgot",  # a forgotten password: asked for before signing in
}
PUBLIC_PREFIXES = ("/static", "/unsubscribe/", "/subscriptions/confirm/", "/login/reset/")


def concrete(path: str, seeded: Seeded) -> str:
    values = {
        "finding_id": str(seeded.findings["mira_v2"]),
        "id": "1",
        "user_id": "1",
        "artist_id": str(seeded.artists["Mira Okafor"]),
        "sha256": seeded.sheet_sha256,
        "fmt": "json",
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def guarded_routes(app: web.Application, seeded: Seeded) -> list[tuple[str, str, Any]]:
    routes = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if route.method == "HEAD" or canonical in PUBLIC or canonical.startswith(PUBLIC_PREFIXES):
            continue
        roles = getattr(route.handler, "required_roles", None)
        assert roles, f"{route.method} {canonical} has no role check"
        routes.append((route.method, concrete(canonical, seeded), roles))
    return routes


def test_every_non_public_route_declares_its_roles(web_runtime, seeded):
    routes = guarded_routes(build_app(web_runtime), seeded)
    assert len(routes) >= 20


async def test_anonymous_visitors_are_sent_to_login_or_get_401(visitors, web_runtime, seeded):
    anon = await visitors()
    await anon.get("/login")  # a session with a CSRF token, so POSTs reach the role check
    for method, path, _ in guarded_routes(build_app(web_runtime), seeded):
        page = await anon.request(method, path, data={"csrf_token": anon.csrf})
        if path.startswith("/api/"):
            assert page.status == 401, (method, path)
            assert page.headers["WWW-Authenticate"].startswith("Bearer")
        else:
            assert page.status == 303, (method, path)
            assert page.location.startswith("/login?next="), (method, path)


@pytest.mark.parametrize("email", ["mod@example.org", "mira@example.org"])
async def test_users_of_the_wrong_role_get_403(visitors, web_runtime, seeded, email):
    user = await visitors(email)
    role = "moderator" if email.startswith("mod") else "artist"
    checked = 0
    for method, path, roles in guarded_routes(build_app(web_runtime), seeded):
        if role in roles or path.startswith("/api/"):
            continue
        await user.get("/login")
        page = await user.request(method, path, data={"csrf_token": user.csrf})
        assert page.status == 403, (email, method, path)
        checked += 1
    assert checked >= 5


async def test_api_refuses_artist_tokens_and_unknown_tokens(visitors):
    anon = await visitors()
    page = await anon.get("/api/v1/findings", headers={"Authorization": "Bearer sw_nope"})
    assert page.status == 401
    page = await anon.get("/api/v1/findings", headers={"Authorization": f"Bearer {ARTIST_TOKEN}"})
    assert page.status == 403
    # a signed-in session cookie is no API credential
    mod = await visitors("mod@example.org")
    assert (await mod.get("/api/v1/findings")).status == 401


def bearer(token: str = MODERATOR_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_api_lists_and_details_findings_uploads_and_artists(visitors, seeded):
    api = await visitors()
    page = await api.get("/api/v1/findings?state=needs_review", headers=bearer())
    items = json.loads(page.text)["items"]
    assert {i["id"] for i in items} == set(seeded.findings.values())
    fid = seeded.findings["mira_v2"]
    detail = json.loads((await api.get(f"/api/v1/findings/{fid}", headers=bearer())).text)
    assert detail["artist"] == "Mira Okafor"
    assert detail["upload"]["uploader"] == "latentlad"
    assert any(e["blob_sha256"] == seeded.sheet_sha256 for e in detail["evidence"])
    uploads = json.loads(
        (await api.get("/api/v1/uploads?source=huggingface", headers=bearer())).text
    )
    assert [u["name"] for u in uploads["items"]] == ["Okafor-esque watercolor (SD1.5)"]
    upload_pk = uploads["items"][0]["id"]
    assert (await api.get(f"/api/v1/uploads/{upload_pk}", headers=bearer())).status == 200
    artists = json.loads((await api.get("/api/v1/artists", headers=bearer())).text)["items"]
    mira = next(a for a in artists if a["name"] == "Mira Okafor")
    assert mira["aliases"] == ["mira_ok", "Okafor"]
    assert (await api.get(f"/api/v1/artists/{mira['id']}", headers=bearer())).status == 200
    assert (await api.get("/api/v1/findings/99999", headers=bearer())).status == 404
    assert (await api.get("/api/v1/findings?state=bogus", headers=bearer())).status == 400


async def test_api_decision_is_audited_and_validated(visitors, seeded):
    api = await visitors()
    fid = seeded.findings["wren"]
    url = f"/api/v1/findings/{fid}/decision"
    page = await api.post(url, csrf=False, headers=bearer(), json={"decision": "nope"})
    assert page.status == 400
    body = {"decision": "confirm", "reason": "matches his portfolio"}
    page = await api.post(url, csrf=False, headers=bearer(), json=body)
    assert page.status == 200
    result = json.loads(page.text)
    assert result["state"] == "confirmed"
    assert result["events"][0] == {
        **result["events"][0],
        "action": "confirm",
        "by": "mod@example.org",
    }


async def test_api_decision_arriving_in_pieces_is_read_whole(visitors, seeded):
    api = await visitors()
    url = f"/api/v1/findings/{seeded.findings['wren']}/decision"
    text = json.dumps({"decision": "confirm", "reason": "x" * 3000}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(text), 1000):
            yield text[start : start + 1000]
            await asyncio.sleep(0.02)

    page = await api.post(url, csrf=False, headers=bearer(), data=pieces())
    assert page.status == 200, page.text
    assert json.loads(page.text)["state"] == "confirmed"
    too_big = json.dumps({"decision": "confirm", "reason": "x" * 70_000})
    page = await api.post(url, csrf=False, headers=bearer(), data=too_big)
    assert page.status == 413 and "over 65,536 bytes" in page.text


async def test_openapi_describes_every_api_route(visitors, web_runtime):
    anon = await visitors()  # no token: tools fetch the description anonymously
    page = await anon.get("/api/v1/openapi.json")
    assert page.status == 200
    doc = json.loads(page.text)
    assert doc["openapi"] == "3.1.0"
    assert doc["security"] == [{"bearer": []}]  # ...and learn that the data needs a token
    assert (await anon.get("/api/v1/findings")).status == 401
    app = build_app(web_runtime)
    api_paths = {
        r.resource.canonical.removeprefix("/api/v1")
        for r in app.router.routes()
        if r.resource and r.resource.canonical.startswith("/api/v1/") and r.method != "HEAD"
    }
    api_paths.discard("/openapi.json")
    assert api_paths == set(doc["paths"])


async def test_metrics_are_public_prometheus_text(visitors):
    page = await (await visitors()).get("/metrics")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'stylewatch_uploads_seen_total{source="civitai"} 3.0' in page.text
    assert 'stylewatch_queue_depth{state="needs_review"} 4.0' in page.text
    assert 'stylewatch_findings{state="needs_review"} 4.0' in page.text
    assert "stylewatch_screening_seconds_bucket" in page.text
    assert "stylewatch_probe_seconds_count 0.0" in page.text


async def test_health_and_home_stay_public(visitors):
    anon = await visitors()
    assert (await anon.get("/livez")).text == '{"status": "ok"}'
    assert (await anon.get("/readyz")).status == 200
    home = await anon.get("/")
    assert "stylewatch is running" in home.text
    assert "Set-Cookie" not in home.headers
