"""`loadgate-modelserver` / `python -m loadgate.modelserver`."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence


def _terminated_before_serving(signum, frame):  # nothing in flight yet: a clean exit
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    # Installed before the heavy imports (grpc, pydantic: seconds on a busy machine), so a
    # supervisor's early SIGTERM still ends in exit 0; `serve` replaces it with the drain.
    signal.signal(signal.SIGTERM, _terminated_before_serving)
    return run(argv)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse, serve until SIGTERM; 2 on a user error (what `main` returns as exit status)."""
    import asyncio
    import logging

    from loadgate.errors import UserError
    from loadgate.modelserver.config import parse_config
    from loadgate.modelserver.server import serve

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = parse_config(argv)
        asyncio.run(serve(cfg))
    except UserError as e:
        print(f"loadgate-modelserver: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
