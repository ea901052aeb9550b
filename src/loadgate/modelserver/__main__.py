"""`loadgate-modelserver` / `python -m loadgate.modelserver`."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from loadgate.errors import UserError
from loadgate.modelserver.config import parse_config
from loadgate.modelserver.server import serve


def main(argv: Sequence[str] | None = None) -> int:
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
