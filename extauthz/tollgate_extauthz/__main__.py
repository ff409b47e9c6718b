"""python -m tollgate_extauthz: serve ext_authz with settings from the environment."""

from __future__ import annotations

import asyncio
import logging

from tollgate.settings import Settings
from tollgate_extauthz.server import serve


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        import uvloop
    except ImportError:  # optional: plain asyncio works, uvloop is faster
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
