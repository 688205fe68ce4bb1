"""Small guards for client input shared by the HTTP and WebSocket handlers (docs/security.md)."""
from __future__ import annotations

import json
import math
from typing import Any

ECHO_LIMIT = 100   # characters of a client-provided value an error message may repeat


def clip(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages and logs that echo input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {clip(text, 40)} is out of range")
    return value


def parse_json(text: str | bytes) -> Any:
    """Strict JSON: no NaN/Infinity literals and no numbers that overflow to infinity (e.g.
    ``1e999``); nesting too deep to parse is a ValueError too, like any other bad JSON."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None
