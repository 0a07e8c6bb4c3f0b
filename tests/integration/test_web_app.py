"""The web app over HTTP (in-process server): sign-in, the queue, the portal, reports,
/metrics, and the security rules every route must keep."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import re

import aiohttp
from aiohttp.test_utils import TestServer

from monitor.web.login_limits import MAX_ACCOUNT_FAILURES
from storage.triage import TriageStore
from tests.web_env import (  # noqa: F401
    HUB_SECRET,
    MODERATOR_TOKEN,
    PASSWORD,
    WEB_SECRET,
    XSS,
    XSS_URL,
    Visitor,
    build_app,
    evidence_sheet,
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)


def image_form(csrf: str, data: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("csrf_token", csrf)
    form.add_field("image", data, filename="reference.png", content_type="image/png")
    return form


# -- sign-in ---------------------------------------------------------------------------


async def test_login_sets_a_hardened_session_cookie_and_lands_by_role(visitors):
    mod = await visitors()
    await mod.get("/login")
    page = await mod.post("/login", {"email": "MOD@example.org ", "password": PASSWORD})
    assert (page.status, page.location) == (303, "/queue")
    cookie = page.headers.getone("Set-Cookie")
    assert "stylewatch_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert WEB_SECRET not in cookie
    artist = await visitors("mira@example.org")
    assert (await artist.get("/login")).location == "/me"


async def test_wrong_password_is_refused_and_login_is_rate_limited(visitors):
    visitor = await visitors()
    await visitor.get("/login")
    for _ in range(MAX_ACCOUNT_FAILURES):
        page = await visitor.post("/login", {"email": "mod@example.org", "password": "nope"})
        assert page.status == 401
        assert "Wrong email or password" in page.text
    page = await visitor.post("/login", {"email": "mod@example.org", "password": PASSWORD})
    assert page.status == 429 and int(page.headers["Retry-After"]) > 0
    # another account from the same address is not locked out
    page = await visitor.post("/login", {"email": "mod2@example.org", "password": PASSWORD})
    assert page.status == 303


async def test_login_never_redirects_off_site(visitors):
    visitor = await visitors()
    await visitor.get("/login")
    data = {"email": "mod@example.org", "password": PASSWORD, "next": "//evil.example/x"}
    page = await visitor.post("/login", data)
    assert page.location == "/queue"


async def test_logout_ends_the_session(visitors):
    mod = await visitors("mod@example.org")
    await mod.get("/queue")
    assert (await mod.post("/logout")).location == "/login"
    assert (await mod.get("/queue")).status == 303


async def test_secure_cookie_behind_https(web_runtime):
    from dataclasses import replace

    web = web_runtime.settings.web.model_copy(update={"base_url": "https://sw.example"})
    settings = web_runtime.settings.model_copy(update={"web": web})
    async with TestServer(build_app(replace(web_runtime, settings=settings))) as server:
        visitor = Visitor(server)
        page = await visitor.get("/login")
        await visitor.close()
    assert "Secure" in page.headers.getone("Set-Cookie")


# -- the queue -------------------------------------------------------------------------


async def test_queue_orders_by_score_and_shows_upload_evidence_and_marks(visitors, seeded):
    mod = await visitors("mod@example.org")
    page = await mod.get("/queue")
    assert page.status == 200
    order = [int(i) for i in re.findall(r'<li class="item" id="f-(\d+)"', page.text)]
    f = seeded.findings
    assert order == [f["mira_v2"], f["wren"], f["okafor_wc"], f["xss"]]
    assert "Mira Okafor Style LoRA v2" in page.text
    assert "latentlad" in page.text
    assert 'href="https://civitai.com/models/412345?modelVersionId=918273"' in page.text
    assert "<mark>mira_ok</mark> style" in page.text
    assert f'src="/blobs/{seeded.sheet_sha256}/thumb"' in page.text


async def test_confirm_with_reason_moves_to_resolved_and_is_audited(visitors, seeded):
    mod = await visitors("mod@example.org")
    fid = seeded.findings["wren"]
    await mod.get("/queue")
    page = await mod.post(
        f"/findings/{fid}/decide",
        {"decision": "confirm", "reason": "trigger word is his alias", "next": "/queue"},
    )
    assert (page.status, page.location) == (303, "/queue")
    assert f'id="f-{fid}"' not in (await mod.get("/queue")).text
    assert f'id="f-{fid}"' in (await mod.get("/queue?tab=resolved")).text
    audit = await mod.get("/audit")
    assert "trigger word is his alias" in audit.text
    assert "mod@example.org" in audit.text


async def test_decision_needs_a_reason(visitors, seeded):
    mod = await visitors("mod@example.org")
    await mod.get("/queue")
    fid = seeded.findings["wren"]
    page = await mod.post(f"/findings/{fid}/decide", {"decision": "dismiss", "reason": " "})
    assert page.status == 400


async def test_a_claimed_finding_cannot_be_worked_by_another_moderator(visitors, seeded):
    fid = seeded.findings["mira_v2"]
    first, second = await visitors("mod@example.org"), await visitors("mod2@example.org")
    await first.get(f"/findings/{fid}")
    assert (await first.post(f"/findings/{fid}/claim")).status == 303
    page = await second.get(f"/findings/{fid}")
    assert "Claimed by mod@example.org" in page.text
    page = await second.post(f"/findings/{fid}/decide", {"decision": "dismiss", "reason": "x"})
    assert page.status == 409
    page = await first.post(f"/findings/{fid}/decide", {"decision": "escalate", "reason": "legal"})
    assert page.status == 303
    assert f'id="f-{fid}"' in (await first.get("/queue?tab=escalated")).text


async def test_bulk_decisions_skip_findings_claimed_by_others(visitors, seeded, web_runtime):
    f = seeded.findings
    mod2 = await visitors("mod2@example.org")
    await mod2.get(f"/findings/{f['okafor_wc']}")
    await mod2.post(f"/findings/{f['okafor_wc']}/claim")
    mod = await visitors("mod@example.org")
    await mod.get("/queue")
    data = [("decision", "dismiss"), ("reason", "parody account"), ("tab", "needs_review")]
    data += [("finding_id", str(f["xss"])), ("finding_id", str(f["okafor_wc"]))]
    page = await mod.post("/queue/bulk", data)
    assert page.location == "/queue?tab=needs_review&skipped=1"
    events = TriageStore(web_runtime.engine).events(f["xss"])
    assert [(e.action, e.reason) for e in events] == [("dismiss", "bulk: parody account")]


async def test_takedown_reports_carry_hashes_links_and_decisions(visitors, seeded):
    mod = await visitors("mod@example.org")
    fid = seeded.findings["mira_v2"]
    await mod.get("/queue")
    await mod.post(f"/findings/{fid}/decide", {"decision": "confirm", "reason": "clear copy"})
    page = await mod.get(f"/findings/{fid}/report.json")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("application/json")
    import json

    item = json.loads(page.text)["items"][0]
    assert item["files"][0]["sha256"] == "ab" * 32
    assert item["upload"]["url"].startswith("https://civitai.com/models/412345")
    assert item["decisions"][0]["reason"] == "clear copy"
    text = (await mod.get("/reports/takedown.txt?source=civitai")).text
    assert "Mira Okafor Style LoRA v2" in text
    assert "sha256 " + "ab" * 32 in text
    assert "wren_lines_xl" not in text  # not confirmed


# -- the artist portal -----------------------------------------------------------------


async def test_artist_manages_aliases_images_and_dismisses_a_finding(visitors, seeded, web_runtime):
    mira = await visitors("mira@example.org")
    page = await mira.get("/me")
    assert "Okafor-esque watercolor" in page.text
    assert "wren_lines_xl" not in page.text  # someone else's finding
    assert (await mira.post("/me/aliases", {"alias": "M. Okafor"})).status == 303
    assert "M. Okafor" in (await mira.get("/me")).text
    await mira.post("/me/aliases/remove", {"alias": "Okafor"})
    assert ">Okafor\n" not in (await mira.get("/me")).text
    form = image_form(mira.csrf, evidence_sheet())
    assert (await mira.post("/me/images", form, csrf=False)).status == 303
    page = await mira.get("/me")
    sha = re.search(r'src="/blobs/([0-9a-f]{64})/thumb"', page.text)
    assert sha is not None
    thumb = await mira.get(f"/blobs/{sha.group(1)}/thumb")
    assert thumb.status == 200
    assert thumb.headers["Content-Type"] == "image/png"
    fid = seeded.findings["okafor_wc"]
    form2 = {"why": "licensed", "note": "contract 2023"}
    page = await mira.post(f"/me/findings/{fid}/dismiss", form2)
    assert page.status == 303
    events = TriageStore(web_runtime.engine).events(fid)
    assert [(e.action, e.reason) for e in events] == [
        ("artist_dismiss", "I licensed this: contract 2023")
    ]


async def test_non_images_and_other_artists_findings_are_refused(visitors, seeded):
    mira = await visitors("mira@example.org")
    await mira.get("/me")
    form = image_form(mira.csrf, b"<html><script>alert(1)</script></html>")
    page = await mira.post("/me/images", form, csrf=False)
    assert page.status == 400
    assert "not a readable image" in page.text
    fid = seeded.findings["wren"]
    page = await mira.post(f"/me/findings/{fid}/dismiss", {"why": "this_is_me"})
    assert page.status == 404
    # nor can an artist fetch evidence of findings about someone else
    assert (await mira.get(f"/blobs/{seeded.sheet_sha256}")).status == 200
    wren = await visitors("wren@example.org")
    assert (await wren.get(f"/blobs/{seeded.sheet_sha256}")).status == 404


# -- security --------------------------------------------------------------------------


async def test_xss_corpus_is_rendered_inert_on_every_page(visitors, seeded):
    mod = await visitors("mod@example.org")
    fid = seeded.findings["xss"]
    await mod.get("/queue")
    await mod.post(f"/findings/{fid}/decide", {"decision": "escalate", "reason": XSS[0]})
    pages = ["/queue?tab=escalated", f"/findings/{fid}", "/audit"]
    for path in pages:
        page = await mod.get(path)
        assert page.status == 200, path
        for payload in XSS:
            assert payload not in page.text, (path, payload)
        assert "<script>window" not in page.text
        assert "onerror=" not in page.text.replace("onerror=&#34;", "")
        assert f'href="{XSS_URL}' not in page.text
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page.text


async def test_secrets_never_reach_a_page(visitors, seeded):
    admin = await visitors("admin@example.org")
    for path in ["/", "/queue", f"/findings/{seeded.findings['mira_v2']}", "/audit", "/login"]:
        page = await admin.get(path)
        for secret in (WEB_SECRET, HUB_SECRET, MODERATOR_TOKEN, "$argon2"):
            assert secret not in page.text, (path, secret)


async def test_pages_send_security_headers(visitors):
    page = await (await visitors()).get("/login")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["X-Frame-Options"] == "DENY"


async def test_post_without_a_valid_csrf_token_is_refused(visitors, seeded):
    mod = await visitors("mod@example.org")
    await mod.get("/queue")
    fid = seeded.findings["wren"]
    data = {"decision": "confirm", "reason": "r"}
    assert (await mod.post(f"/findings/{fid}/decide", data, csrf=False)).status == 403
    bad = {"csrf_token": "forged", **data}
    assert (await mod.post(f"/findings/{fid}/decide", bad, csrf=False)).status == 403
    other = await visitors("mod2@example.org")  # a real token, of another session
    stolen = {"csrf_token": other.csrf, **data}
    assert (await mod.post(f"/findings/{fid}/decide", stolen, csrf=False)).status == 403
    anon = await visitors()
    await anon.get("/login")
    login = {"email": "mod@example.org", "password": PASSWORD}
    assert (await anon.post("/login", login, csrf=False)).status == 403
    assert (await mod.post(f"/findings/{fid}/decide", data)).status == 303  # with it: fine
