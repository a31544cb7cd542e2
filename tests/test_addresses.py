"""Finding this machine's addresses: each method on its own, the fallbacks, and tcp:// URLs.

Nothing here needs the internet: the echo service is a local HTTP server, and the route probe
and interface table are pointed at or replaced with local ones where a test needs certainty.
"""
from __future__ import annotations

import errno
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import typeguard

from parsl_repro import addresses
from parsl_repro.errors import OptionalModuleMissing

psutil = pytest.importorskip("psutil", reason="psutil (the htex extra) lists network interfaces")


def interface(address: str, family: int = socket.AF_INET) -> SimpleNamespace:
    return SimpleNamespace(family=family, address=address)


@pytest.fixture
def echo_service(monkeypatch) -> Iterator[dict]:
    """A local stand-in for the public-address service; set ``reply['status']`` to change its answer."""
    reply = {"status": 200, "body": "203.0.113.7"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = reply["body"].encode()
            self.send_response(reply["status"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="echo-service",
                              daemon=True)
    thread.start()
    monkeypatch.setattr(addresses, "IP_ECHO_URL", f"http://127.0.0.1:{server.server_port}/")
    yield reply
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def unreachable_echo_service(monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setattr(addresses, "IP_ECHO_URL", f"http://127.0.0.1:{closed_port}/")


def local_ipv4_addresses() -> set[str]:
    return {a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET}


# --- tcp_url ------------------------------------------------------------------------------------

@pytest.mark.parametrize("address, port, expected", [
    ("127.0.0.1", 55001, "tcp://127.0.0.1:55001"),
    ("10.1.2.3", "55001", "tcp://10.1.2.3:55001"),
    ("127.0.0.1", None, "tcp://127.0.0.1"),
    ("127.0.0.1", 0, "tcp://127.0.0.1"),
    ("127.0.0.1", "", "tcp://127.0.0.1"),
    ("::1", 55001, "tcp://[::1]:55001"),
    ("fe80::1", None, "tcp://fe80::1"),
    ("*", None, "tcp://*"),
    ("*", "55001", "tcp://*:55001"),
])
def test_tcp_url_brackets_ipv6_only_before_a_port(address, port, expected):
    assert addresses.tcp_url(address, port) == expected


def test_tcp_url_rejects_a_hostname():
    with pytest.raises(ValueError, match="login1"):
        addresses.tcp_url("login1", 55001)


# --- address_by_interface -----------------------------------------------------------------------

def test_address_by_interface_gives_loopback_for_lo():
    if "lo" not in psutil.net_if_addrs():
        pytest.skip("no interface named lo on this host")
    assert addresses.address_by_interface("lo") == "127.0.0.1"


def test_address_by_interface_picks_the_primary_ipv4_address(monkeypatch):
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {
        "ib0": [interface("fe80::1", socket.AF_INET6), interface("10.0.0.5"), interface("10.0.0.6")],
    })
    assert addresses.address_by_interface("ib0") == "10.0.0.5"


def test_address_by_interface_names_the_interfaces_that_exist_when_one_is_missing(monkeypatch):
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {"lo": [interface("127.0.0.1")],
                                                         "eth0": [interface("10.0.0.5")]})
    with pytest.raises(OSError, match="'ib0'.*eth0, lo") as caught:
        addresses.address_by_interface("ib0")
    assert caught.value.errno == errno.ENODEV


def test_address_by_interface_without_ipv4_says_which_interfaces_have_one(monkeypatch):
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {"lo": [interface("127.0.0.1")],
                                                         "ib0": [interface("fe80::1", socket.AF_INET6)]})
    with pytest.raises(OSError, match="'ib0' has no IPv4.*: lo$") as caught:
        addresses.address_by_interface("ib0")
    assert caught.value.errno == errno.EADDRNOTAVAIL


def test_address_by_interface_checks_the_argument_type():
    with pytest.raises(typeguard.TypeCheckError):
        addresses.address_by_interface(0)  # type: ignore[arg-type]


# --- address_by_route, address_by_hostname ------------------------------------------------------

def test_address_by_route_gives_the_source_address_of_the_route(monkeypatch):
    monkeypatch.setattr(addresses, "_ROUTE_PROBE", ("127.0.0.1", 80))
    assert addresses.address_by_route() == "127.0.0.1"


def test_address_by_route_uses_a_local_interface_when_there_is_a_default_route():
    try:
        found = addresses.address_by_route()
    except OSError as e:  # a host without a default route is allowed to say so
        assert e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        return
    assert found in local_ipv4_addresses()


def test_address_by_hostname_resolves_this_hosts_name(monkeypatch):
    monkeypatch.setattr(addresses.platform, "node", lambda: "localhost")
    assert addresses.address_by_hostname() == "127.0.0.1"


def test_address_by_hostname_raises_when_the_name_does_not_resolve(monkeypatch):
    monkeypatch.setattr(addresses.platform, "node", lambda: "no-such-host.invalid")
    with pytest.raises(OSError):
        addresses.address_by_hostname()


# --- address_by_query ---------------------------------------------------------------------------

def test_address_by_query_returns_what_the_service_answers(echo_service):
    assert addresses.address_by_query(timeout=5) == "203.0.113.7"


def test_address_by_query_raises_on_an_http_error(echo_service):
    echo_service["status"] = 503
    with pytest.raises(RuntimeError, match="503"):
        addresses.address_by_query(timeout=5)


def test_address_by_query_raises_on_a_success_that_is_not_200(echo_service):
    echo_service.update(status=203, body="")
    with pytest.raises(RuntimeError, match="203"):
        addresses.address_by_query(timeout=5)


def test_address_by_query_fails_fast_with_oserror_when_unreachable(unreachable_echo_service):
    started = time.monotonic()
    with pytest.raises(OSError):
        addresses.address_by_query(timeout=5)
    assert time.monotonic() - started < 2


def test_address_by_query_checks_the_timeout_type():
    with pytest.raises(typeguard.TypeCheckError):
        addresses.address_by_query(timeout="30")  # type: ignore[arg-type]


# --- get_all_addresses, get_any_address ---------------------------------------------------------

def test_get_all_addresses_collects_every_interface_and_the_query(echo_service):
    found = addresses.get_all_addresses()
    assert local_ipv4_addresses() <= found
    assert "203.0.113.7" in found


def test_get_all_addresses_skips_failing_methods(monkeypatch, unreachable_echo_service):
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {"eth0": [interface("10.0.0.5")],
                                                         "ib0": [interface("fe80::1", socket.AF_INET6)]})
    monkeypatch.setattr(addresses.platform, "node", lambda: "no-such-host.invalid")
    monkeypatch.setattr(addresses, "_ROUTE_PROBE", ("127.0.0.1", 80))
    assert addresses.get_all_addresses() == {"10.0.0.5", "127.0.0.1"}


def test_get_any_address_prefers_the_first_interface_with_ipv4(monkeypatch):
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {"ib0": [interface("fe80::1", socket.AF_INET6)],
                                                         "eth0": [interface("10.0.0.5")]})
    assert addresses.get_any_address() == "10.0.0.5"


def test_get_any_address_falls_back_to_the_hostname(monkeypatch):
    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {})
    monkeypatch.setattr(addresses.platform, "node", lambda: "localhost")
    assert addresses.get_any_address() == "127.0.0.1"


def test_get_any_address_raises_when_every_method_fails(monkeypatch, unreachable_echo_service):
    def no_route() -> str:
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(psutil, "net_if_addrs", lambda: {})
    monkeypatch.setattr(addresses.platform, "node", lambda: "no-such-host.invalid")
    monkeypatch.setattr(addresses, "address_by_route", no_route)
    with pytest.raises(RuntimeError, match="Cannot find any address"):
        addresses.get_any_address()


def test_without_psutil_interfaces_are_skipped_and_named_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(OptionalModuleMissing, match="psutil"):
        addresses.address_by_interface("lo")
    monkeypatch.setattr(addresses.platform, "node", lambda: "localhost")
    assert addresses.get_any_address() == "127.0.0.1"
