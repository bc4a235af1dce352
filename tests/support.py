"""Helpers shared by the tests: the sample payloads in ``tests/events``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """The payload ``tests/events/<name>``, freshly parsed (callers may mutate it)."""
    payload: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return payload
