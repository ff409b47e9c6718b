"""Run localstripe (a third-party stateful Stripe fake) for local demos and tests, on loopback only
and without its side effects: upstream it binds every interface and pickles its whole store to the
fixed /tmp/localstripe.pickle after every write (shared by every instance, and slow as data grows).

    python -m tollgate.local.localstripe_server --port N
"""

from __future__ import annotations

import argparse
import logging


def main() -> None:
    from aiohttp import web
    from localstripe import resources, server

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    # In-memory only: no shared pickle file, no state leaking between instances.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
