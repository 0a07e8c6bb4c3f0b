"""Typer option aliases the commands share, written once (``as_json: JsonOption = False``)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOption"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
