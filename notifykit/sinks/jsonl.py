"""A sink that appends one JSON object per line to a file (JSON Lines).

Why one ``os.write`` per line is enough, with no lock file
----------------------------------------------------------
The file is opened with ``O_APPEND``. POSIX says that for such a file the
offset is moved to the end and the data written as one step, with no other
modification of the file in between: concurrent appenders never overwrite each
other. Each line is encoded completely (newline included) and handed to the
kernel in a single ``write(2)``. On Linux, a write to a regular file holds the
inode's lock for the whole call (ext4, XFS, btrfs, tmpfs), so two writes never
interleave: lines from many threads and many processes come out whole, in
some order.

``PIPE_BUF`` (4096 bytes on Linux) is the guarantee for pipes and FIFOs, not
for regular files: if ``path`` is a FIFO, lines longer than that may be torn.
Delivery events are a few hundred bytes, so in practice every line fits.

Where the guarantee does not hold: NFS (``O_APPEND`` is emulated by the
client: appends from two machines can overwrite each other), and Windows,
where the C runtime seeks then writes (safe between threads of one process,
not between processes). Use :class:`~notifykit.sinks.sqlite.SQLiteSink` or one
file per process there.

Lines reach the operating system at once (no user-space buffer), so they
survive a crash of the process; ``fsync`` is not called, so the last ones may
be lost if the machine loses power.

A torn line (the disk filled up, or a process was killed, mid-write) costs
only itself: a sink that finds the file not ending in a newline when it opens
it, or whose own write failed part-way, starts its next line with a newline,
so the following events are not glued to the torn one; and
:func:`read_events` skips (and counts) a line it cannot read instead of
stopping there. An event with text JSON-encoded UTF-8 cannot carry (a lone
surrogate, from ``json.loads`` of bad input) is written with ``\\u`` escapes
instead of being lost.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from notifykit.errors import ConfigurationError, NotifyKitError
from notifykit.sinks.base import DeliveryEvent

__all__ = ["EventReader", "JSONLSink", "read_events"]

_logger = logging.getLogger("notifykit")

# One encoder, built once: json.dumps with options builds a new one per call.
# default=str keeps a metadata value that JSON cannot carry (a Decimal, a date)
# from losing the whole event; it is written as its str().
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
# For the rare event whose text UTF-8 cannot encode (a lone surrogate): every
# non-ASCII character escaped, which JSON carries and json.loads reads back.
_encode_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)

# A write to a regular file is complete unless the disk is full or a size limit
# is hit; the few extra rounds only finish a line the kernel cut short.
_MAX_WRITES = 8


class JSONLSink:
    """Appends each event as one JSON object on its own line.

    ``JSONLSink("deliveries.jsonl")`` creates the file if needed (mode 0644,
    less the umask) and never truncates it. Safe from many threads and from
    several processes appending to the same file; see the module docstring for
    why and for where that stops being true (NFS, Windows).

    Each line is :meth:`DeliveryEvent.to_dict` as JSON, UTF-8, and can be read
    back with :func:`read_events`. Rotate the file with a tool that renames it
    and lets the next open create a new one (logrotate's ``copytruncate`` also
    works, since every write appends).

    Raises:
        ConfigurationError: the file cannot be opened (missing directory, no
            permission).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._fd: int | None = os.open(self.path, _FLAGS, 0o644)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open the delivery log file {self.path!r}: {exc.strerror}"
            ) from exc
        # Held around each write only so that close() cannot release the file
        # descriptor (and the OS hand its number to another file) mid-write.
        self._lock = threading.Lock()
        # True when the file may end in a torn line: the next line then starts
        # with a newline of its own (a blank line, which readers skip).
        self._torn = _ends_torn(self._fd, self.path)

    def record(self, event: DeliveryEvent) -> None:
        """Append ``event`` as one line, with one ``write`` call.

        Raises:
            NotifyKitError: the sink is closed.
            OSError: the disk is full or the file cannot be written.
        """
        fields = event.to_dict()
        try:
            data = (_encode(fields) + "\n").encode("utf-8")
        except UnicodeEncodeError:
            data = (_encode_ascii(fields) + "\n").encode("ascii")
        with self._lock:
            fd = self._fd
            if fd is None:
                raise NotifyKitError(f"{self!r} is closed")
            if self._torn:
                data = b"\n" + data
            try:
                written = os.write(fd, data)
                rounds = 1
                while written < len(data):
                    if rounds >= _MAX_WRITES:
                        raise OSError(f"could not finish writing a line to {self.path!r}")
                    written += os.write(fd, data[written:])
                    rounds += 1
            except BaseException:
                # Part of the line may be in the file: start the next one afresh.
                self._torn = True
                raise
            self._torn = False

    def close(self) -> None:
        """Close the file. Later ``record()`` calls raise; closing twice is harmless."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._fd is None

    def __enter__(self) -> JSONLSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JSONLSink({self.path!r})"


def _ends_torn(fd: int, path: str) -> bool:
    """Whether the regular file ``fd`` is open on ends in something other than a newline."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
            return False
        with open(path, "rb") as file:  # fd is write-only
            file.seek(-1, os.SEEK_END)
            return file.read(1) != b"\n"
    except OSError:  # unreadable (write-only permissions): assume whole
        return False


class EventReader(Iterator[DeliveryEvent]):
    """The events of a JSON Lines delivery log, oldest first (see :func:`read_events`).

    Attributes:
        skipped: lines that were not delivery events and were skipped so far
            (a torn line, a glued pair of lines, text that is not UTF-8).
        skipped_lines: their line numbers, 1-based.
    """

    def __init__(self, path: str | os.PathLike[str], *, strict: bool = False) -> None:
        self.path = os.fspath(path)
        self.strict = strict
        self.skipped = 0
        self.skipped_lines: list[int] = []
        self._events = self._read()

    def __iter__(self) -> EventReader:
        return self

    def __next__(self) -> DeliveryEvent:
        return next(self._events)

    def _read(self) -> Iterator[DeliveryEvent]:
        with open(self.path, "rb") as file:
            for lineno, raw in enumerate(file, 1):
                if not raw.strip():
                    continue
                try:
                    data: Any = json.loads(raw.decode("utf-8"))
                    event = DeliveryEvent.from_dict(data)
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    if self.strict:
                        raise NotifyKitError(
                            f"{self.path}:{lineno}: not a delivery event "
                            f"({type(exc).__name__}: {exc})"
                        ) from exc
                    self.skipped += 1
                    self.skipped_lines.append(lineno)
                    _logger.warning(
                        "%s:%d: not a delivery event (%s); skipped",
                        self.path,
                        lineno,
                        type(exc).__name__,
                    )
                    continue
                yield event


def read_events(path: str | os.PathLike[str], *, strict: bool = False) -> EventReader:
    """Yield the events of a JSON Lines delivery log, oldest first.

    Blank lines are skipped, and so is a line that is not a delivery event (a
    line torn by a full disk or a killed process): it is logged on
    ``notifykit`` and counted in the reader's ``skipped`` (its number in
    ``skipped_lines``), and the lines after it are read::

        reader = read_events("deliveries.jsonl")
        events = list(reader)
        if reader.skipped:
            print(f"{reader.skipped} unreadable lines: {reader.skipped_lines}")

    Args:
        strict: raise at the first unreadable line instead.

    Raises:
        NotifyKitError: with ``strict=True``, a line is not a delivery event
            (it names the line).
        OSError: the file cannot be read.
    """
    return EventReader(path, strict=strict)
