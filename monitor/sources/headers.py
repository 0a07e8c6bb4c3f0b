"""The one header-read loop of a model file, on the local disk or on a hub.

A safetensors header is read with as few bytes as it takes: the first ``PREFIX_BYTES``, and
when the header is longer, once more only the bytes still missing, never past
``MAX_READ_HEADER_BYTES``. `header_reads` is that loop without the I/O: it yields each read
it wants as ``(offset, length)`` and is sent back ``(the bytes read, the file's size or
None)``; `read_header_with` drives it over a synchronous reader, and the poller drives it
over a hub's Range reads (`monitor.pipeline.poll.fetch_header`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from detectors.errors import HeaderError, InputError, NeedMoreBytes
from detectors.results import SafetensorsHeader
from detectors.screening import MAX_READ_HEADER_BYTES, PREFIX_BYTES, read_header

__all__ = ["HeaderReads", "Read", "header_reads", "read_header_with"]

Read = tuple[int, int]  # (offset, length)
HeaderReads = Generator[Read, tuple[bytes, int | None], SafetensorsHeader]


def header_reads(filename: str) -> HeaderReads:
    """Ask for the reads a header takes and parse it. Raises InputError (HeaderError,
    RefusedFile) with a one-line message for a bad, refused, oversized or truncated one."""
    data, size = yield (0, PREFIX_BYTES)
    try:
        return read_header(data, file_size=size, filename=filename)
    except NeedMoreBytes as more:
        needed = more.needed
    if needed > MAX_READ_HEADER_BYTES:
        cap_mb = MAX_READ_HEADER_BYTES // (1024 * 1024)
        raise HeaderError(
            f"{filename}: a {needed}-byte header is over the {cap_mb} MB read cap "
            "(a model's header is under 1 MB)"
        )
    if size is not None and needed > size:
        raise InputError(f"{filename}: the header claims {needed} bytes but the file has {size}")
    rest, _ = yield (len(data), needed - len(data))
    data += rest
    if len(data) < needed:
        raise HeaderError(f"{filename}: the file ends inside its header")
    return read_header(data, file_size=size, filename=filename)


def read_header_with(
    read: Callable[[int, int], bytes], filename: str, size: int | None
) -> SafetensorsHeader:
    """`header_reads` over ``read(offset, length)`` for a file of ``size`` bytes."""
    reads = header_reads(filename)
    offset, length = next(reads)
    try:
        while True:
            offset, length = reads.send((read(offset, length), size))
    except StopIteration as done:
        header: SafetensorsHeader = done.value
        return header
