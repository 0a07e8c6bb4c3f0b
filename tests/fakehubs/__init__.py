"""Fake Civitai and Hugging Face hubs (aiohttp apps on 127.0.0.1:0) with switchable quirks."""

from __future__ import annotations
