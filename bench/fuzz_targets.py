"""What bench/fuzz.py feeds: every parser of outside input, each behind ``bytes -> None``.

Each target calls the production code the way production calls it (hub JSON decoded as
``monitor.sources.http`` decodes a body, config and artist files read from a real file, a model
card decoded as the Hugging Face source decodes README bytes) and then the pure code that
consumes the parsed value, so a crash one step later counts too. ``expected`` lists the
parser's documented error types: anything else escaping is an unhandled exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from yarl import URL

from bench import fuzz_seeds as seeds
from detectors.architecture import infer_architecture
from detectors.bounded_json import loads_bounded
from detectors.errors import ConfigError, HeaderError, InputError, RefusedFile, SourceRejected
from detectors.file_format import refuse_if_pickle
from detectors.metadata import decode_metadata, metadata_fields
from detectors.safetensors_header import parse_header
from monitor.artists import references as reference_images
from monitor.artists.artist_file import read_artist_file
from monitor.settings import CivitaiSettings, HuggingFaceSettings, Settings, load_settings
from monitor.sources import civitai, huggingface
from monitor.sources.html_text import html_to_text
from monitor.sources.http import HttpClient, parse_links, retry_after_s
from monitor.sources.targets import parse_hub_target

# Kinds pick the structure-aware mutations (bench/fuzz_mutators.py) on top of byte edits.
Kind = str
MAX_INPUT_BYTES = 64 * 1024  # per-input size cap (libFuzzer -max_len), images excepted
MAX_IMAGE_INPUT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    """One parser: how to call it on bytes, what it may raise, what to seed it with.

    ``weight`` is its share of the inputs (slow parsers get fewer); ``cost`` its time per
    input relative to the fastest, measured under atheris, so the slowest workers start
    first. ``raised_in`` narrows ``expected``: the error must be raised by a frame in that
    file (a ``ValueError`` out of Pillow is not ``check_image``'s documented refusal).
    """

    name: str
    parse: Callable[[bytes], object]
    expected: tuple[type[Exception], ...]
    kind: Kind
    seeds: Callable[[], list[bytes]]
    weight: float = 1.0
    cost: float = 1.0
    max_len: int = MAX_INPUT_BYTES
    raised_in: str | None = None


def build_targets(workdir: Path) -> dict[str, Target]:
    """Every target, in a fixed order; file-reading targets write their input under ``workdir``."""
    reader = _Parsers(workdir)
    targets = [
        Target("safetensors_header", reader.safetensors, (HeaderError,), "safetensors",
               seeds.safetensors_seeds, weight=2.0),
        Target("safetensors_metadata", reader.metadata, (HeaderError,), "json",
               seeds.metadata_seeds, weight=1.5),
        Target("bounded_json", reader.bounded_json, (HeaderError,), "json", seeds.json_text_seeds),
        Target("file_format", reader.file_format, (RefusedFile,), "binary", seeds.pickle_seeds),
        Target("civitai_version", reader.civitai_version, (SourceRejected,), "json",
               lambda: seeds.hub_seeds("civitai_version"), cost=2),
        Target("civitai_model", reader.civitai_model, (SourceRejected,), "json",
               lambda: seeds.hub_seeds("civitai_model"), cost=3),
        Target("civitai_page", reader.civitai_page, (SourceRejected,), "json",
               lambda: seeds.hub_seeds("civitai_page"), cost=2),
        Target("hf_model", reader.hf_model, (SourceRejected,), "json",
               lambda: seeds.hub_seeds("hf_model")),
        Target("hf_model_card", reader.model_card, (), "text", seeds.card_seeds),
        # html.parser is quadratic in unclosed tags on Python 3.11 (see the xfail in
        # tests/unit/regressions): coverage guidance grows inputs into it, hence fewer.
        Target("civitai_description", reader.description, (), "html", seeds.html_seeds,
               weight=0.25, cost=60),
        Target("http_headers", reader.http_headers, (), "text", seeds.http_header_seeds),
        Target("hub_target", reader.hub_target, (InputError,), "text", seeds.hub_target_seeds,
               cost=3),
        Target("config_toml", reader.config, (ConfigError,), "toml", seeds.config_seeds,
               weight=0.5, cost=12),
        Target("artist_csv", reader.artist_csv, (InputError,), "csv", seeds.artist_csv_seeds,
               cost=5),
        Target("artist_toml", reader.artist_toml, (InputError,), "toml", seeds.artist_toml_seeds,
               cost=5),
        Target("reference_image", reader.image, (ValueError,), "image", seeds.image_seeds,
               weight=1.5, cost=4, max_len=MAX_IMAGE_INPUT_BYTES,
               raised_in=reference_images.__file__),
    ]  # fmt: skip
    return {target.name: target for target in targets}


def hub_json(raw: bytes) -> Any:
    """A hub answer's body decoded as ``HttpClient._json_once`` decodes it (the same call and
    the same errors caught; tests/integration/test_http_hostile.py pins the real one)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SourceRejected("the answer is not JSON") from exc


class _Parsers:
    """The production call paths, with the fixed context some of them need."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._settings: Settings | None = None
        # Sources only keep the client for later requests; nothing here sends one.
        no_http = cast(HttpClient, None)
        self._civitai = civitai.CivitaiSource(CivitaiSettings(), no_http)
        self._hf = huggingface.HuggingFaceSource(HuggingFaceSettings(), no_http)
        self._card_model = huggingface.ModelInfo.parse(json.loads(seeds.hub_seeds("hf_model")[0]))

    def _file(self, data: bytes, suffix: str) -> Path:
        path = self._workdir / f"input{suffix}"
        path.write_bytes(data)
        return path

    def safetensors(self, data: bytes) -> None:
        header = parse_header(data)
        infer_architecture(header)
        metadata_fields(header.metadata)
        decode_metadata(header.metadata)
        parse_header(data, file_size=len(data))

    def metadata(self, data: bytes) -> None:
        self.safetensors(seeds.length_prefixed(b'{"__metadata__":' + data + b"}"))

    def bounded_json(self, data: bytes) -> None:
        loads_bounded(data.decode("utf-8", "surrogateescape"), "metadata value")

    def file_format(self, data: bytes) -> None:
        names = (None, "lora.safetensors", "model.ckpt", "weights.bin")
        refuse_if_pickle(data, names[len(data) % len(names)])

    def civitai_version(self, data: bytes) -> None:
        version = civitai.CivitaiVersion.parse(hub_json(data))
        list(self._civitai._remote_files(version.files))
        list(civitai._hub_text(version.model_name or "", {}, version))

    def civitai_model(self, data: bytes) -> None:
        model = civitai.CivitaiModel.parse(hub_json(data))
        for version in model.versions:
            listed = model.listed(version)
            list(civitai._hub_text(model.name, listed.hint, version))
            list(self._civitai._remote_files(version.files))
        _ = model.newest

    def civitai_page(self, data: bytes) -> None:
        page = civitai.FeedPage.parse(hub_json(data))
        civitai._past(page, None)
        civitai._dedupe(civitai._new_versions(page.models, None))
        if page.next_cursor is not None:
            civitai._cursor_model_id(page.next_cursor)

    def hf_model(self, data: bytes) -> None:
        info = huggingface.ModelInfo.parse(hub_json(data))
        _ = info.is_adapter
        info.listed()
        list(self._hf._remote_files(info))
        list(huggingface._hub_text(info, ""))

    def model_card(self, data: bytes) -> None:
        readme = data.decode("utf-8", errors="replace")  # as HuggingFaceSource._readme does
        list(huggingface._hub_text(self._card_model, readme))

    def description(self, data: bytes) -> None:
        html_to_text(data.decode("utf-8", "surrogateescape"))

    def http_headers(self, data: bytes) -> None:
        headers: dict[str, str] = {}
        for line in data.decode("utf-8", "surrogateescape").splitlines():  # as aiohttp does
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        parse_links(headers.get("Link", ""), URL("https://huggingface.co/api/models"))
        retry_after_s(headers, 1_786_000_000.0)

    def hub_target(self, data: bytes) -> None:
        if self._settings is None:
            self._settings = load_settings()
        # A command-line argument: what the OS gives Python, undecodable bytes escaped.
        parse_hub_target(os.fsdecode(data), self._settings)

    def config(self, data: bytes) -> None:
        load_settings(self._file(data, ".toml"))

    def artist_csv(self, data: bytes) -> None:
        read_artist_file(self._file(data, ".csv"))

    def artist_toml(self, data: bytes) -> None:
        read_artist_file(self._file(data, ".toml"))

    def image(self, data: bytes) -> None:
        reference_images.check_image(data)
