"""The queue a moderator works all day: search, filters and sort in the URL (a view can be
shared), pages by keyset that never skip or repeat a finding while others are decided."""

# ruff: noqa: F811  (pytest fixtures imported from tests.web_env are test parameters here)

from __future__ import annotations

import html
import re

import pytest

from detectors.results import ArtistMatch, Evidence
from storage.records import FindingState
from storage.store import Store
from storage.triage import TriageStore
from storage.web_queries import QueueFilter, WebQueries
from tests.web_env import (  # noqa: F401
    seeded,
    visitors,
    web_runtime,
    web_server,
    web_template,
)

OPEN: tuple[FindingState, ...] = ("needs_review",)


def shown(text: str) -> set[int]:
    return {int(i) for i in re.findall(r'<li class="item" id="f-(\d+)"', text)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=wren", {"wren"}),
        ("q=WREN_LINES", {"wren"}),  # any case; "_" is a character, not a wildcard
        ("q=" + "ab" * 32, {"mira_v2"}),  # a file's sha256
        ("q=latentlad", {"mira_v2"}),  # the uploader
        ("artist=mira+okafor", {"mira_v2", "okafor_wc"}),
        ("source=huggingface", {"okafor_wc"}),
        ("min_score=0.9", {"mira_v2"}),
        ("q=%25", set()),  # LIKE wildcards are text, not patterns
        ("since=2999-01-01", set()),
    ],
)
async def test_search_and_filters_narrow_the_queue(visitors, seeded, query, expected):
    mod = await visitors("mod@example.org")
    page = await mod.get(f"/queue?tab=needs_review&{query}")
    assert page.status == 200, page.text
    assert shown(page.text) == {seeded.findings[k] for k in expected}
    if not expected:
        assert "No finding matches this filter." in page.text


async def test_a_filtered_view_is_kept_across_tabs_and_decisions(visitors, seeded):
    mod = await visitors("mod@example.org")
    page = await mod.get("/queue?tab=needs_review&artist=Mira+Okafor&sort=newest")
    text = html.unescape(page.text)
    assert "/queue?tab=resolved&artist=Mira+Okafor&sort=newest" in text  # the tab link
    decided = seeded.findings["okafor_wc"]
    answer = await mod.post(
        f"/findings/{decided}/decide",
        data={
            "csrf_token": mod.csrf,
            "decision": "dismiss",
            "reason": "licensed",
            "next": "/queue?tab=needs_review&artist=Mira+Okafor&sort=newest",
        },
    )
    assert answer.status == 303
    assert answer.location == "/queue?tab=needs_review&artist=Mira+Okafor&sort=newest"
    page = await mod.get(answer.location)
    assert shown(page.text) == {seeded.findings["mira_v2"]}
    # the bulk form goes back to the same view
    assert 'name="next" value="/queue?tab=needs_review&amp;artist=Mira+Okafor' in page.text


@pytest.mark.parametrize(
    "query", ["min_score=2", "min_score=abc", "source=myspace", "sort=random", "since=yesterday"]
)
async def test_a_bad_filter_is_one_clear_400(visitors, query):
    mod = await visitors("mod@example.org")
    page = await mod.get(f"/queue?{query}")
    assert page.status == 400
    assert "This queue view cannot be shown" in page.text


@pytest.mark.parametrize("sort", ["score", "newest", "oldest"])
def test_keyset_pages_neither_skip_nor_repeat_while_findings_are_decided(web_runtime, sort):
    store = web_runtime.store
    artist = store.add_artist("Pagina Keyes")
    for n in range(23):
        upload, _ = store.record_upload("civitai", f"page-{n}", f"keyes style {n}")
        score = 0.5 + (n % 4) / 10  # ties on score, so the keyset's later columns matter
        store.record_findings(
            upload.id,
            [ArtistMatch(artist.id, artist.name, score, "metadata", (Evidence("t", "k"),))],
        )
    queries = WebQueries(web_runtime.engine)
    where = QueueFilter(artist="pagina keyes", sort=sort)
    everything = [v.finding.id for v in queries.queue_page(OPEN, where, limit=100).views]
    assert len(everything) == 23
    triage = TriageStore(web_runtime.engine)
    seen: list[int] = []
    after = None
    decided = 0
    while True:
        page = queries.queue_page(OPEN, where, after, limit=5)
        assert page.total == 23 - decided
        seen.extend(v.finding.id for v in page.views)
        if page.next_after is None:
            break
        after = page.next_after
        # a finding already seen leaves the queue meanwhile: the next page must not shift
        triage.artist_dismiss(seen[decided], artist.id, 1, "licensed")
        decided += 1
    assert seen == everything


async def test_the_audit_log_names_upload_and_artist_and_filters(visitors, seeded):
    mod = await visitors("mod@example.org")
    await mod.get("/queue")  # a page, so the session has its CSRF token
    for key, decision in (("wren", "confirm"), ("okafor_wc", "escalate")):
        answer = await mod.post(
            f"/findings/{seeded.findings[key]}/decide",
            data={"csrf_token": mod.csrf, "decision": decision, "reason": f"{key} checked"},
        )
        assert answer.status == 303
    page = await mod.get("/audit")
    assert page.status == 200
    assert "wren_lines_xl" in page.text and "Tomasz Wren" in page.text
    assert "Okafor-esque watercolor (SD1.5)" in page.text
    page = await mod.get("/audit?artist=tomasz+wren")
    assert "wren_lines_xl" in page.text and "Okafor-esque" not in page.text
    page = await mod.get("/audit?action=escalate&who=mod%40example.org")
    assert "Okafor-esque" in page.text and "wren_lines_xl" not in page.text
    page = await mod.get("/audit?who=system")
    assert "No action matches this filter." in page.text
    assert (await mod.get("/audit?before=%D9%A3")).status == 400
    for url, said in (("/audit?before=x", "before is an id"), ("/queue?after=", "after is an id")):
        answer = await mod.get(url)
        assert answer.status == 400 and said in answer.text


def test_audit_entries_page_back_by_keyset(web_runtime, seeded):
    triage = TriageStore(web_runtime.engine)
    mira = seeded.artists["Mira Okafor"]
    for n in range(7):  # an artist's dismissals, then each undone by nothing: 7 entries
        triage.artist_dismiss(seeded.findings["okafor_wc"], mira, 1, "licensed", f"note {n}")
    everything = [e.id for e in triage.events(limit=100)]
    paged: list[int] = []
    before = None
    while page := triage.events(limit=3, before=before):
        paged.extend(e.id for e in page)
        before = page[-1].id
    assert paged == everything and len(everything) >= 7
    assert all(e.upload_name == "Okafor-esque watercolor (SD1.5)" for e in triage.events(limit=7))


async def test_reuploads_of_one_model_share_a_card_and_a_decision(visitors, web_runtime, seeded):
    store = web_runtime.store
    original = WebQueries(web_runtime.engine).finding(seeded.findings["mira_v2"])
    assert original is not None
    mira = seeded.artists["Mira Okafor"]
    again, _ = store.record_upload(
        "civitai",
        "918999",
        "mira ink washes (reupload)",
        uploader="copycat",
        reupload_of=original.finding.upload_pk,
    )
    [copy] = store.record_findings(
        again.id, [ArtistMatch(mira, "Mira Okafor", 0.55, "metadata", (Evidence("tags", "x"),))]
    )
    mod = await visitors("mod@example.org")
    page = await mod.get("/queue")
    assert seeded.findings["mira_v2"] in shown(page.text)
    assert copy.id not in shown(page.text)  # not a card of its own
    assert "1 re-upload of the same model" in page.text
    assert "mira ink washes (reupload)" in page.text
    card = page.text.split(f'id="f-{seeded.findings["mira_v2"]}"')[1].split('<li class="item"')[0]
    assert 'action="/queue/bulk"' in card and f'name="finding_id" value="{copy.id}"' in card
    answer = await mod.post(
        "/queue/bulk",
        data=[
            ("csrf_token", mod.csrf),
            ("finding_id", str(seeded.findings["mira_v2"])),
            ("finding_id", str(copy.id)),
            ("decision", "confirm"),
            ("reason", "same model re-uploaded"),
            ("next", "/queue?tab=needs_review"),
        ],
    )
    assert answer.status == 303
    resolved = shown((await mod.get("/queue?tab=resolved")).text)
    assert seeded.findings["mira_v2"] in resolved  # the copy joins its card there too
    states = {f.id: f.state for f in WebQueries(web_runtime.engine).findings(artist_id=mira)}
    assert states[copy.id] == states[seeded.findings["mira_v2"]] == "confirmed"


async def test_one_uploaders_versions_of_a_name_share_a_card(visitors, web_runtime, seeded):
    """The same uploader re-posting one model under version marks ("v3", "(SDXL)", "final")
    gets one card and one decision; another uploader, or another hub, keeps its own card."""
    store: Store = web_runtime.store
    mira = seeded.artists["Mira Okafor"]

    def posted(upload_id: str, name: str, uploader: str, source: str = "civitai") -> int:
        record, _ = store.record_upload(source, upload_id, name, uploader=uploader)
        match = ArtistMatch(mira, "Mira Okafor", 0.6, "metadata", (Evidence("tags", "x"),))
        return store.record_findings(record.id, [match])[0].id

    v3 = posted("918300", "Mira Okafor Style LoRA v3 - dreamy ink washes", "latentlad")
    xl = posted("918301", "mira_okafor_style_lora (SDXL) final dreamy ink washes", "latentlad")
    other = posted("918302", "Mira Okafor Style LoRA v4 dreamy ink washes", "someoneelse")
    elsewhere = posted("hf:latentlad/mira", "Mira Okafor Style LoRA v5 dreamy ink washes",
                       "latentlad", source="huggingface")  # fmt: skip
    mod = await visitors("mod@example.org")
    page = await mod.get("/queue")
    cards = shown(page.text)
    assert seeded.findings["mira_v2"] in cards  # the highest score holds the card
    assert v3 not in cards and xl not in cards
    assert other in cards and elsewhere in cards
    assert "2 more uploads by latentlad named like this one" in page.text
    card = page.text.split(f'id="f-{seeded.findings["mira_v2"]}"')[1].split('<li class="item"')[0]
    for finding in (v3, xl):
        assert f'name="finding_id" value="{finding}"' in card
    assert f'value="{other}"' not in card and f'value="{elsewhere}"' not in card
