"""Real HTTP and FTP servers on loopback for the staging tests, each a child process serving a
directory: Python's ``http.server`` and pyftpdlib (see ../shared/NOTES-infra.md, section 5).
Each binds port 0 and reports the port it got on its first line of output."""
from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

_HTTP = """
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.func.log_message = lambda *a: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

_FTP = """
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
root, user, password = sys.argv[1:4]
authorizer = DummyAuthorizer()
authorizer.add_user(user, password, root, perm="elr")
authorizer.add_anonymous(root)
FTPHandler.authorizer = authorizer
server = FTPServer(("127.0.0.1", 0), FTPHandler)
print(server.address[1], flush=True)
server.serve_forever()
"""


@contextlib.contextmanager
def _serve(script: str, *args: str) -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.strip().isdigit():
            raise RuntimeError(f"file server did not start (exit code {proc.poll()})")
        yield int(line)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def http_server(root: str) -> contextlib.AbstractContextManager[int]:
    """Serve ``root`` over HTTP on 127.0.0.1; yields the port."""
    return _serve(_HTTP, root)


def ftp_server(root: str, user: str, password: str) -> contextlib.AbstractContextManager[int]:
    """Serve ``root`` read-only over FTP on 127.0.0.1 to ``user``/``password`` and to anonymous
    users; yields the port."""
    return _serve(_FTP, root, user, password)
