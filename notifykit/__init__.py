"""notifykit: transactional e-mail and SMS for Python applications.

Everything public is importable from here (``import notifykit as nk;
nk.Email, nk.SMTPTransport, nk.FailoverTransport, ...``). Names are resolved on
first use, so ``import notifykit`` stays fast and never imports an optional
dependency (httpx, boto3, Django...) before the part that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    # messages and receipts
    "Email": "notifykit.message",
    "SMS": "notifykit.message",
    "Attachment": "notifykit.message",
    "Alternative": "notifykit.message",
    "parse_addresses": "notifykit.message",
    "Recipient": "notifykit.message",
    "Message": "notifykit.message",
    "message_from_dict": "notifykit.message",
    "normalize_phone": "notifykit.message",
    "Receipt": "notifykit.receipt",
    "Attempt": "notifykit.receipt",
    # errors
    "NotifyKitError": "notifykit.errors",
    "ConfigurationError": "notifykit.errors",
    "MissingDependency": "notifykit.errors",
    "InvalidMessage": "notifykit.errors",
    "TemplateError": "notifykit.errors",
    "DeliveryError": "notifykit.errors",
    "TransientError": "notifykit.errors",
    "ProviderError": "notifykit.errors",
    "RejectedError": "notifykit.errors",
    "Suppressed": "notifykit.errors",
    "AllTransportsFailed": "notifykit.errors",
    # transports
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
    "Retry": "notifykit.retry",
    "RateLimit": "notifykit.ratelimit",
    # templates
    "TemplateRenderer": "notifykit.templates",
    "Rendered": "notifykit.templates",
    # delivery log
    "LogSink": "notifykit.sinks.base",
    "DeliveryEvent": "notifykit.sinks.base",
    "LoggingSink": "notifykit.sinks.stdlib",
    "MemorySink": "notifykit.sinks.memory",
    "JSONLSink": "notifykit.sinks.jsonl",
    "SQLiteSink": "notifykit.sinks.sqlite",
    # the notifier and configuration
    "Notifier": "notifykit.notifier",
    "from_dsn": "notifykit.config",
    "from_env": "notifykit.config",
    "mask_url": "notifykit.config",
    # the outbox
    "Outbox": "notifykit.outbox.base",
    "SQLiteOutbox": "notifykit.outbox.sqlite",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'notifykit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from notifykit.config import from_dsn as from_dsn
    from notifykit.config import from_env as from_env
    from notifykit.config import mask_url as mask_url
    from notifykit.errors import AllTransportsFailed as AllTransportsFailed
    from notifykit.errors import ConfigurationError as ConfigurationError
    from notifykit.errors import DeliveryError as DeliveryError
    from notifykit.errors import InvalidMessage as InvalidMessage
    from notifykit.errors import MissingDependency as MissingDependency
    from notifykit.errors import NotifyKitError as NotifyKitError
    from notifykit.errors import ProviderError as ProviderError
    from notifykit.errors import RejectedError as RejectedError
    from notifykit.errors import Suppressed as Suppressed
    from notifykit.errors import TemplateError as TemplateError
    from notifykit.errors import TransientError as TransientError
    from notifykit.message import SMS as SMS
    from notifykit.message import Alternative as Alternative
    from notifykit.message import Attachment as Attachment
    from notifykit.message import Email as Email
    from notifykit.message import Message as Message
    from notifykit.message import Recipient as Recipient
    from notifykit.message import message_from_dict as message_from_dict
    from notifykit.message import normalize_phone as normalize_phone
    from notifykit.message import parse_addresses as parse_addresses
    from notifykit.notifier import Notifier as Notifier
    from notifykit.outbox.base import Outbox as Outbox
    from notifykit.outbox.sqlite import SQLiteOutbox as SQLiteOutbox
    from notifykit.ratelimit import RateLimit as RateLimit
    from notifykit.receipt import Attempt as Attempt
    from notifykit.receipt import Receipt as Receipt
    from notifykit.retry import Retry as Retry
    from notifykit.sinks.base import DeliveryEvent as DeliveryEvent
    from notifykit.sinks.base import LogSink as LogSink
    from notifykit.sinks.jsonl import JSONLSink as JSONLSink
    from notifykit.sinks.memory import MemorySink as MemorySink
    from notifykit.sinks.sqlite import SQLiteSink as SQLiteSink
    from notifykit.sinks.stdlib import LoggingSink as LoggingSink
    from notifykit.templates import Rendered as Rendered
    from notifykit.templates import TemplateRenderer as TemplateRenderer
    from notifykit.transports.base import BaseTransport as BaseTransport
    from notifykit.transports.base import Transport as Transport
    from notifykit.transports.console import ConsoleTransport as ConsoleTransport
    from notifykit.transports.failover import FailoverTransport as FailoverTransport
    from notifykit.transports.failover import RoundRobinTransport as RoundRobinTransport
    from notifykit.transports.fast2sms import Fast2SMSTransport as Fast2SMSTransport
    from notifykit.transports.file import FileTransport as FileTransport
    from notifykit.transports.memory import MemoryTransport as MemoryTransport
    from notifykit.transports.msg91 import MSG91Transport as MSG91Transport
    from notifykit.transports.ses import SESTransport as SESTransport
    from notifykit.transports.smtp import SMTPTransport as SMTPTransport
