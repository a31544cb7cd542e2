"""``parsl-visualize``: serve the dashboard of a provenance store (Parsl's command and options).

    parsl-visualize [DB_PATH] [-p PORT] [-l ADDRESS] [-d]

DB_PATH is any SQLAlchemy URL (``sqlite:///runinfo/provenance.db``, ``postgresql://...``) or the
path of an SQLite file; without it, ``$PARSL_REPRO_PROVENANCE_URL``, else
``runinfo/provenance.db`` of the working directory. The store is opened read-only.
"""
from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import os
import socket
import sys
from collections.abc import Sequence

from parsl_repro.errors import ParslError
from parsl_repro.utils import redact_secrets

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8080
DEFAULT_LISTEN = "127.0.0.1"


def store_url(db_path: str | None) -> str:
    """The URL to open: DB_PATH as given (a plain path becomes an SQLite URL), else the default."""
    if db_path:
        return db_path if "://" in db_path else f"sqlite:///{os.path.abspath(db_path)}"
    return os.environ.get("PARSL_REPRO_PROVENANCE_URL") or f"sqlite:///{os.path.abspath('runinfo/provenance.db')}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parsl-visualize", description="Serve the dashboard of a parsl_repro provenance "
                                "store: runs, tasks, failures, files and resources, live and after the fact.")
    p.add_argument("db_path", nargs="?", help="store URL or SQLite file (default: $PARSL_REPRO_PROVENANCE_URL, "
                   "else runinfo/provenance.db)")
    p.add_argument("-p", "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("-l", "--listen", default=DEFAULT_LISTEN,
                   help=f"address to listen on (default {DEFAULT_LISTEN}, this machine only)")
    p.add_argument("-d", "--debug", action="store_true", help="Dash's debug mode (reloads on code changes)")
    p.add_argument("--refresh", type=float, default=2.0, metavar="SECONDS",
                   help="how often live pages look for news (default 2)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    url = store_url(args.db_path)
    try:
        from parsl_repro.monitoring.engine import open_for_reading

        engine = open_for_reading(url)
        _check_port(args.listen, args.port)
    except ParslError as e:
        print(f"parsl-visualize: {e}", file=sys.stderr)
        return 2
    if not _is_loopback(args.listen):
        print(f"parsl-visualize: WARNING: listening on {args.listen}: anyone who can reach port {args.port} sees every "
              f"recorded run, argument and path in this store", file=sys.stderr)
    from parsl_repro.viz.app import create_app

    app = create_app(engine, url, refresh_seconds=args.refresh)
    shown_host = f"[{args.listen}]" if ":" in args.listen else args.listen
    print(f"parsl-visualize: serving {redact_secrets(url)} at http://{shown_host}:{args.port}/ (ctrl-C to stop)",
          flush=True)
    try:
        app.run(host=args.listen, port=args.port, debug=args.debug)
    except KeyboardInterrupt:
        pass
    finally:
        engine.dispose()
    return 0


class PortInUse(ParslError):
    pass


def _check_port(host: str, port: int) -> None:
    """Fail with a message naming the port when it cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is already in use: stop what uses it, or choose another "
                                f"port with -p PORT") from None
            raise PortInUse(f"cannot listen on {host} port {port}: {e.strerror}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
