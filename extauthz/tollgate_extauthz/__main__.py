"""python -m tollgate_extauthz: serve ext_authz with settings from the environment."""

from __future__ import annotations

import asyncio

from tollgate.logging_setup import configure
from tollgate.settings import Settings
from tollgate_extauthz.server import serve


def main() -> None:
    settings = Settings()
    configure(settings.log_level, settings.log_format)
    try:
        import uvloop
    except ImportError:  # optional: plain asyncio works, uvloop is faster
        asyncio.run(serve(settings))
    else:
        uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
