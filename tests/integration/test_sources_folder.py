"""FolderSource: a file is taken once its size is stable across two polls, keyed by sha256."""

from __future__ import annotations

import hashlib

import pytest

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


async def test_hydrate_without_the_listing_finds_the_file_by_its_hash(tmp_path) -> None:
    """What the probe worker does after a restart: only the recorded id and name are known."""
    from detectors.errors import SourceRejected
    from monitor.sources.base import ListedUpload

    data = fixture_bytes("kohya_sd15_style_lora")
    sha = hashlib.sha256(data).hexdigest()
    watched = tmp_path / "watched"
    (watched / "sub").mkdir(parents=True)
    (watched / "other.safetensors").write_bytes(fixture_bytes("kohya_sdxl_lora"))
    moved = watched / "sub" / "renamed.safetensors"
    moved.write_bytes(data)
    source = FolderSource(FolderSettings(enabled=True, path=watched))
    upload = await source.hydrate(ListedUpload(sha, "quellbrook.safetensors"))
    (file,) = upload.files
    assert (file.name, file.size) == ("renamed.safetensors", len(data))
    dest = tmp_path / "copy.bin"
    assert await source.download(file, dest) == len(data)
    assert dest.read_bytes() == data
    moved.unlink()
    with pytest.raises(SourceRejected, match="no longer in the watched folder"):
        await source.hydrate(ListedUpload(sha, "quellbrook.safetensors"))
