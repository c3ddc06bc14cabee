"""Transports: the objects that deliver messages.

Optional-dependency transports (SES, MSG91, Fast2SMS) are resolved lazily, so
importing this package never imports boto3 or httpx.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Transport": "notifykit.transports.base",
    "BaseTransport": "notifykit.transports.base",
    "ConsoleTransport": "notifykit.transports.console",
    "MemoryTransport": "notifykit.transports.memory",
    "FileTransport": "notifykit.transports.file",
    "SMTPTransport": "notifykit.transports.smtp",
    "SESTransport": "notifykit.transports.ses",
    "MSG91Transport": "notifykit.transports.msg91",
    "Fast2SMSTransport": "notifykit.transports.fast2sms",
    "FailoverTransport": "notifykit.transports.failover",
    "RoundRobinTransport": "notifykit.transports.failover",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'notifykit.transports' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
