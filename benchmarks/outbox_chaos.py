"""The full outbox chaos run: 10,000 messages, 3 workers, 20 kill -9s, flapping servers.

The same scenario as ``tests/outbox/test_chaos.py`` (see ``tests/outbox/chaos.py``),
at the size the issue asks for; too slow for CI. Run::

    python benchmarks/outbox_chaos.py                    # 10,000 messages, 20 kills
    python benchmarks/outbox_chaos.py --messages 2000 --kills 5

It prints the summary and exits 1 when a message was lost, dead-lettered
without a reason, or arrived more often than its recorded attempts allow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.outbox.chaos import run_chaos  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        result = run_chaos(
            Path(directory),
            messages=args.messages,
            workers=args.workers,
            kills=args.kills,
            timeout=args.timeout,
        )
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
