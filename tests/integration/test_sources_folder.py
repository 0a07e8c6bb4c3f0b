"""FolderSource: a file is taken once its size is stable across two polls, keyed by sha256."""

from __future__ import annotations

import hashlib

from monitor.settings import FolderSettings
from monitor.sources.base import Cursor
from monitor.sources.folder import FolderSource
from tests.modelfiles import fixture_bytes


async def test_a_file_is_taken_once_it_stops_growing(tmp_path) -> None:
    data = fixture_bytes("kohya_sd15_style_lora")
    path = tmp_path / "style.safetensors"
    path.write_bytes(data[:1000])
    source = FolderSource(FolderSettings(enabled=True, path=tmp_path), min_age_s=3600)

    first = await source.list_new(Cursor())
    assert first.uploads == ()
    path.write_bytes(data)  # still being copied: a new size
    second = await source.list_new(first.cursor)
    assert second.uploads == ()
    third = await source.list_new(second.cursor)
    assert [u.upload_id for u in third.uploads] == [hashlib.sha256(data).hexdigest()]
    fourth = await source.list_new(third.cursor)
    assert fourth.uploads == ()  # taken once

    upload = await source.hydrate(third.uploads[0])
    fetched = await source.read_bytes(upload.files[0], 0, 64)
    assert fetched.data == data[:64]
    assert fetched.total_size == len(data)


async def test_an_old_file_is_taken_at_first_sight(tmp_path) -> None:
    (tmp_path / "old.safetensors").write_bytes(fixture_bytes("kohya_sdxl_lora"))
    source = FolderSource(FolderSettings(enabled=True, path=tmp_path), min_age_s=0)
    assert len((await source.list_new(Cursor())).uploads) == 1
