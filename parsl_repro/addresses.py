"""Ways to find an address of this machine that workers can connect back to.

Which one gives a usable answer depends on the network between the submitting machine and the
workers (NAT, several interfaces, hostnames that do not resolve), so choose by trying them. Each
``address_by_*`` function raises when its method finds nothing; ``get_all_addresses`` and
``get_any_address`` try them all and only log the failures. Nothing here needs the internet
except ``address_by_query``, which fails quickly (``OSError``) when the echo service is
unreachable.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import platform
import socket
import urllib.error
import urllib.request
from collections.abc import Callable

import typeguard

from parsl_repro.errors import OptionalModuleMissing

logger = logging.getLogger(__name__)

# The service address_by_query asks; it answers with the caller's public address as plain text.
IP_ECHO_URL = "https://api.ipify.org"

# get_all_addresses and get_any_address ask the echo service with this timeout rather than
# address_by_query's 30 s, so an offline machine does not stall an executor's start.
SEARCH_QUERY_TIMEOUT = 5.0

# Any public address will do: connecting a UDP socket sends nothing, it only picks the route.
_ROUTE_PROBE = ("8.8.8.8", 80)


def address_by_route() -> str:
    """The local address of the route this host would use to reach the internet (8.8.8.8).

    No packet is sent. Raises ``OSError`` when there is no such route. The answer is unusable
    when workers cannot reach the internet-facing interface.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(_ROUTE_PROBE)
        address: str = probe.getsockname()[0]
    logger.debug("address by route: %s", address)
    return address


@typeguard.typechecked
def address_by_query(timeout: float = 30) -> str:
    """This host's public address as an outside service (ipify) sees it.

    Raises ``OSError`` (``urllib.error.URLError`` or a timeout) when the service cannot be
    reached within ``timeout`` seconds, and ``RuntimeError`` when it answers with an HTTP error.
    The answer is unusable behind NAT or when workers cannot reach the public address.
    """
    logger.debug("asking %s for this host's public address", IP_ECHO_URL)
    try:
        with urllib.request.urlopen(IP_ECHO_URL, timeout=timeout) as response:
            status = response.status
            address = response.read().decode().strip()
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{IP_ECHO_URL} answered with HTTP status {e.code}, not an address") from e
    if status != 200:
        raise RuntimeError(f"{IP_ECHO_URL} answered with HTTP status {status}, not an address")
    logger.debug("address by query: %s", address)
    return address


def address_by_hostname() -> str:
    """The address this host's own name (``platform.node()``) resolves to.

    Raises ``OSError`` (``socket.gaierror``) when the name does not resolve. The answer is
    unusable when workers resolve the name differently.
    """
    hostname = platform.node()
    address = socket.gethostbyname(hostname)
    logger.debug("address by hostname %s: %s", hostname, address)
    return address


def _ipv4_addresses_by_interface() -> dict[str, list[str]]:
    """Every network interface's name and its IPv4 addresses, primary address first."""
    try:
        import psutil
    except ImportError as e:
        raise OptionalModuleMissing(["psutil"], "listing network interfaces needs psutil "
                                    "(pip install 'parsl-repro[htex]')") from e
    return {name: [a.address for a in addresses if a.family == socket.AF_INET]
            for name, addresses in psutil.net_if_addrs().items()}


@typeguard.typechecked
def address_by_interface(ifname: str) -> str:
    """The IPv4 address of the network interface named ``ifname``, e.g. ``'eth0'`` or ``'ib0'``.

    Raises ``OSError`` naming the interfaces that exist when there is no such interface, or
    when it has no IPv4 address.
    """
    interfaces = _ipv4_addresses_by_interface()
    if ifname not in interfaces:
        raise OSError(errno.ENODEV, f"no network interface named {ifname!r}; "
                                    f"this host has: {', '.join(sorted(interfaces))}")
    if not interfaces[ifname]:
        with_ipv4 = sorted(name for name, addresses in interfaces.items() if addresses)
        raise OSError(errno.EADDRNOTAVAIL, f"network interface {ifname!r} has no IPv4 address; "
                                           f"interfaces with one: {', '.join(with_ipv4)}")
    return interfaces[ifname][0]


def _interface_names() -> list[str]:
    try:
        return list(_ipv4_addresses_by_interface())
    except OptionalModuleMissing as e:
        logger.info("not looking at network interfaces: %s", e)
        return []


def _address_by_quick_query() -> str:
    return address_by_query(timeout=SEARCH_QUERY_TIMEOUT)


def _other_finders() -> list[Callable[[], str]]:
    """The address finders that need no interface name, in the order they are tried."""
    return [address_by_hostname, address_by_route, _address_by_quick_query]


def get_all_addresses() -> set[str]:
    """Every address any method finds: each interface's, then by hostname, route and query.

    Methods that fail are skipped (logged at debug level); the set may be empty.
    """
    addresses = set()
    for interface in _interface_names():
        try:
            addresses.add(address_by_interface(interface))
        except Exception as e:
            logger.debug("no address from interface %s: %s", interface, e)
    for finder in _other_finders():
        try:
            addresses.add(finder())
        except Exception as e:
            logger.debug("no address from %s: %s", finder.__name__, e)
    return addresses


def get_any_address() -> str:
    """The first address found, trying each interface, then by hostname, route and query.

    On most hosts the first interface is loopback, so this is often ``127.0.0.1``. Raises
    ``RuntimeError`` when every method fails.
    """
    for interface in _interface_names():
        try:
            return address_by_interface(interface)
        except Exception as e:
            logger.info("no address from interface %s: %s", interface, e)
    for finder in _other_finders():
        try:
            return finder()
        except Exception as e:
            logger.info("no address from %s: %s", finder.__name__, e)
    raise RuntimeError("Cannot find any address of the local machine: every interface, the hostname, "
                       "the route and the query failed. Give the executor an address explicitly.")


def tcp_url(address: str, port: str | int | None = None) -> str:
    """A ``tcp://`` URL for an IPv4 or IPv6 address (or ``*``), with the port if one is given.

    IPv6 addresses are bracketed when a port follows. ``address`` must be ``*`` or an IP
    address; a hostname raises ``ValueError``. A port of ``None``, ``0`` or ``""`` is left out.
    """
    suffix = f":{port}" if port else ""
    if address == "*":
        return f"tcp://*{suffix}"
    if ipaddress.ip_address(address).version == 6 and suffix:
        return f"tcp://[{address}]{suffix}"
    return f"tcp://{address}{suffix}"
