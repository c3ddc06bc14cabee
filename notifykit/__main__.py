"""``python -m notifykit``: the same as the ``notifykit`` command."""

from notifykit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
