"""Users, API tokens, leases and the audit log, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from detectors.errors import InputError
from detectors.results import ArtistMatch, Evidence
from storage.triage import LEASE_S, FindingClaimed, FindingNotFound, TriageStore
from storage.users import UserStore
from storage.web_queries import WebQueries


@pytest.fixture
def finding_ids(store) -> list[int]:
    artist = store.add_artist("Mira Okafor", ["mira_ok"])
    ids = []
    for n in range(3):
        upload, _ = store.record_upload("civitai", str(n), f"upload {n}")
        match = ArtistMatch(artist.id, artist.name, 0.5 + n / 10, "metadata", (Evidence("t", "x"),))
        ids.append(store.record_findings(upload.id, [match])[0].id)
    return ids


@pytest.fixture
def users(engine, clock) -> tuple[int, int]:
    store = UserStore(engine, clock)
    a = store.add_user("a@example.org", "moderator", "hash-a")
    b = store.add_user("B@Example.org ", "moderator", "hash-b")
    return a.id, b.id


def test_users_are_unique_by_email_and_checked(engine, clock, store):
    users = UserStore(engine, clock)
    users.add_user("Mod@Example.org", "moderator", "h")
    found = users.credentials(" mod@example.org ")
    assert found is not None
    assert found[1] == "h"
    with pytest.raises(InputError, match="already exists"):
        users.add_user("mod@example.org", "admin", "h")
    with pytest.raises(InputError, match="--artist"):
        users.add_user("artist@example.org", "artist", "h")
    with pytest.raises(InputError, match="no artist"):
        users.add_user("artist@example.org", "artist", "h", "Nobody")
    with pytest.raises(InputError, match="role"):
        users.add_user("x@example.org", "root", "h")  # type: ignore[arg-type]
    store.add_artist("Tomasz Wren")
    assert users.add_user("t@example.org", "artist", "h", "tomasz wren").artist_id is not None


def test_tokens_resolve_to_their_user_and_note_their_use(engine, clock, users):
    store = UserStore(engine, clock)
    store.add_token("a@example.org", "ci", "f" * 64)
    user = store.user_for_token("f" * 64)
    assert user is not None
    assert user.email == "a@example.org"
    assert store.user_for_token("0" * 64) is None
    with pytest.raises(InputError):
        store.add_token("nobody@example.org", "ci", "e" * 64)


def test_a_lease_keeps_others_off_until_it_expires(engine, clock, users, finding_ids):
    a, b = users
    triage = TriageStore(engine, clock)
    fid = finding_ids[0]
    triage.claim(fid, a)
    triage.claim(fid, a)  # renewing is fine and not audited twice
    with pytest.raises(FindingClaimed) as caught:
        triage.decide(fid, b, "dismiss", "not her")
    assert caught.value.holder == "a@example.org"
    assert set(triage.leases([fid])) == {fid}
    clock.advance(LEASE_S + 1)
    assert triage.leases([fid]) == {}
    triage.decide(fid, b, "dismiss", "not her")
    actions = [(e.action, e.user_email) for e in triage.events(fid)]
    assert actions == [("dismiss", "B@example.org".lower()), ("claim", "a@example.org")]
    with pytest.raises(FindingNotFound):
        triage.claim(99999, a)


def test_bulk_decisions_and_artist_dismissals_are_audited(engine, clock, users, finding_ids):
    a, b = users
    triage = TriageStore(engine, clock)
    triage.claim(finding_ids[0], b)
    result = triage.decide_many([*finding_ids, 424242], a, "confirm", "same trigger words")
    assert result.decided == tuple(finding_ids[1:])
    assert result.skipped == (finding_ids[0], 424242)
    queries = WebQueries(engine, clock)
    assert [v.finding.id for v in queries.queue(["confirmed"])] == finding_ids[1:][::-1]
    with pytest.raises(InputError, match="reason"):
        triage.decide(finding_ids[0], b, "confirm", "  ")
    artist_id = queries.findings()[0].artist_id
    triage.artist_dismiss(finding_ids[0], artist_id, a, "this_is_me", "my own account")
    assert queries.findings(state="dismissed")[0].id == finding_ids[0]
    assert triage.events(finding_ids[0])[0].reason == "this is me: my own account"
    with pytest.raises(FindingNotFound):
        triage.artist_dismiss(finding_ids[1], artist_id + 1, a, "licensed")


def test_metrics_snapshot_counts_uploads_and_findings(engine, clock, finding_ids):
    snapshot = WebQueries(engine, clock).metrics()
    assert snapshot.uploads_by_source == {"civitai": 3}
    assert snapshot.findings_by_state == {"needs_review": 3}
