"""An artist opens the evidence of a finding about her own work (the alert's "See the
evidence" link), read-only, and never another artist's."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import re

from tests.web_env import (  # noqa: F401
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)


async def test_the_artist_sees_her_own_finding_with_its_evidence(visitors, seeded):
    mira = await visitors("mira@example.org")
    finding = seeded.findings["mira_v2"]
    page = await mira.get(f"/findings/{finding}")
    assert page.status == 200, page.text
    assert "Mira Okafor Style LoRA v2" in page.text
    assert "48 paintings by" in page.text  # quoted evidence (the name is highlighted)
    assert f"/blobs/{seeded.sheet_sha256}" in page.text  # the evidence sheet
    # the sheet the page shows opens for her
    assert (await mira.get(f"/blobs/{seeded.sheet_sha256}")).status == 200
    # read-only: no claim, no moderator decision, no takedown report, no moderator's address
    assert "/claim" not in page.text
    assert 'action="/findings/' not in page.text
    assert "report.txt" not in page.text
    assert "mod@example.org" not in page.text
    # she may still say it is fine, through her own portal's form
    assert f'action="/me/findings/{finding}/dismiss"' in page.text


async def test_the_portal_links_each_finding_to_its_evidence(visitors, seeded):
    mira = await visitors("mira@example.org")
    page = await mira.get("/me")
    assert page.status == 200
    links = set(re.findall(r'href="/findings/(\d+)"', page.text))
    assert str(seeded.findings["mira_v2"]) in links
    assert str(seeded.findings["wren"]) not in links
    # led by its strongest line (the probe's style evidence), as the alert mail puts it
    card = page.text.split(f'id="finding-{seeded.findings["mira_v2"]}"')[1]
    assert '<p class="muted">style: LoRA vs base vs references (+' in card


async def test_another_artists_finding_is_as_if_absent(visitors, seeded):
    wren = await visitors("wren@example.org")
    mine = await wren.get(f"/findings/{seeded.findings['wren']}")
    assert mine.status == 200
    theirs = await wren.get(f"/findings/{seeded.findings['mira_v2']}")
    assert theirs.status == 404
    assert "Mira" not in theirs.text
    missing = await wren.get("/findings/999999")
    assert missing.status == 404
    assert (await wren.get(f"/blobs/{seeded.sheet_sha256}")).status in (403, 404)


async def test_moderators_keep_the_working_page(visitors, seeded):
    mod = await visitors("mod@example.org")
    page = await mod.get(f"/findings/{seeded.findings['mira_v2']}")
    assert page.status == 200
    # how strong the tag line is: the tag captions 48 of the 60 training images
    assert '<span class="strength">×48 of 60 images</span>' in page.text
    assert "ran: the style evidence below is the probe" in page.text
    # where no probe ran, the page says why
    other = await mod.get(f"/findings/{seeded.findings['okafor_wc']}")
    assert "not run: no base model configured for sd1 ([probe] base_models has none)" in other.text
    assert "/claim" in page.text
    assert "report.txt" in page.text
    assert "/me/findings/" not in page.text
