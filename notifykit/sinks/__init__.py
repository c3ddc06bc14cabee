"""The delivery log: :class:`LogSink` and the built-in sinks."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "LogSink": "notifykit.sinks.base",
    "DeliveryEvent": "notifykit.sinks.base",
    "LoggingSink": "notifykit.sinks.stdlib",
    "MemorySink": "notifykit.sinks.memory",
    "JSONLSink": "notifykit.sinks.jsonl",
    "SQLiteSink": "notifykit.sinks.sqlite",
    "StatsRow": "notifykit.sinks.sqlite",
    "DeliveryRecord": "notifykit.sinks.sqlite",
    "read_events": "notifykit.sinks.jsonl",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'notifykit.sinks' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
