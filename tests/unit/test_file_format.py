from __future__ import annotations

import io
import pickle  # only pickle.dumps, to make the files that must be refused
import zipfile

import numpy as np
import pytest
from safetensors.numpy import save

from detectors.errors import RefusedFile
from detectors.file_format import refuse_if_pickle, sniff_format
from tests.modelfiles import FIXTURE_NAMES, fixture_bytes

HARMLESS = {"state_dict": {"w": [0.0, 1.0]}, "epoch": 3, "name": "harmless"}


def torch_style_zip(prefix: str = "archive") -> bytes:
    """The layout torch.save writes: a zip whose first entry is <prefix>/data.pkl."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{prefix}/data.pkl", pickle.dumps(HARMLESS, protocol=2))
        archive.writestr(f"{prefix}/byteorder", "little")
        archive.writestr(f"{prefix}/data/0", b"\0" * 64)
        archive.writestr(f"{prefix}/version", "3\n")
    return buffer.getvalue()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_binary_pickles(protocol):
    data = pickle.dumps(HARMLESS, protocol=protocol)
    assert sniff_format(data) == "pickle"
    assert sniff_format(data[:16]) == "pickle"


@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("value", [HARMLESS, [1, 2, 3], ("a", 1), {}, []])
def test_old_protocol_pickles(protocol, value):
    data = pickle.dumps(value, protocol=protocol)
    assert sniff_format(data[:64]) == "pickle"


def test_old_protocol_global():
    # GLOBAL opcode first: what protocol 0 writes for an object of a named class.
    assert sniff_format(b"ccollections\nOrderedDict\nq\x00)Rq\x01.") == "pickle"


@pytest.mark.parametrize("prefix", ["archive", "quellbrook_style_v1"])
def test_torch_zip_checkpoints(prefix):
    data = torch_style_zip(prefix)
    assert sniff_format(data) == "pickle"
    assert sniff_format(data[:256]) == "pickle"


def test_zip_with_data_pkl_at_the_root():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.pkl", pickle.dumps(HARMLESS))
    assert sniff_format(buffer.getvalue()) == "pickle"


def test_zip_found_by_its_central_directory():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("readme.txt", "x" * 10_000)
        archive.writestr("model/data.pkl", pickle.dumps(HARMLESS))
    assert sniff_format(buffer.getvalue()) == "pickle"


def test_zip_without_a_pickle_is_unknown():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images/0001.png", b"\x89PNG")
    assert sniff_format(buffer.getvalue()) == "unknown"


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_safetensors_fixtures(name):
    assert sniff_format(fixture_bytes(name)[:64], f"{name}.safetensors") == "safetensors"


def test_safetensors_from_the_reference_writer():
    assert sniff_format(save({"a": np.zeros(3, np.float32)})) == "safetensors"


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\x80", b"\x80\x01", b"\x80\x06junk", b"GIF89a", b"\x89PNG\r\n", b"hello world", b"{}"],
)
def test_other_bytes_are_unknown(prefix):
    assert sniff_format(prefix) == "unknown"


def test_pickle_suffix_refuses_bytes_that_name_nothing():
    assert sniff_format(b"\x00\x01garbage", "model.ckpt") == "pickle"
    assert sniff_format(b"\x00\x01garbage", "MODEL.PT") == "pickle"
    assert sniff_format(b"\x00\x01garbage", "model.safetensors") == "unknown"


def test_bytes_win_over_the_name():
    assert sniff_format(pickle.dumps(HARMLESS), "innocent.safetensors") == "pickle"
    assert sniff_format(fixture_bytes("kohya_sdxl_lora")[:64], "model.ckpt") == "safetensors"


def test_refuse_if_pickle_raises_refused_file():
    with pytest.raises(RefusedFile) as caught:
        refuse_if_pickle(torch_style_zip(), "quellbrook.ckpt")
    assert caught.value.format == "pickle"
    message = str(caught.value)
    assert "'quellbrook.ckpt' is a pickle file (.ckpt/.pt/.bin)" in message
    assert "ask for a .safetensors version" in message
    assert "\n" not in message


def test_refuse_if_pickle_without_a_name():
    with pytest.raises(RefusedFile, match="the file is a pickle file"):
        refuse_if_pickle(pickle.dumps(HARMLESS, protocol=5))


def test_refuse_if_pickle_passes_other_formats_through():
    assert refuse_if_pickle(fixture_bytes("aitoolkit_flux_lora")[:64]) == "safetensors"
    assert refuse_if_pickle(b"GIF89a") == "unknown"


@pytest.mark.parametrize("header_len", [0x280, 0x380, 0x480, 0x580, 0x04034B50])
def test_safetensors_whose_length_looks_like_another_format(header_len):
    # 640 = b"\x80\x02…" (pickle PROTO 2); 0x04034B50 = b"PK\x03\x04" (zip).
    prefix = header_len.to_bytes(8, "little") + b'{"__metadata__":{}}'
    assert sniff_format(prefix, "model.ckpt") == "safetensors"
