"""Where a webhook may go (SPEC section 10): https only in production, never
to loopback, private, link-local or metadata addresses; development allows
http and loopback. The addresses are checked at delivery time, after
resolution (workers/webhooks/guard.py); the URL's form when it is saved."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def url_problem(url: str, *, development: bool) -> str | None:
    """Why the URL cannot be an endpoint's (None: acceptable as written)."""
    if len(url) > MAX_URL_LENGTH:
        return f"The URL is longer than {MAX_URL_LENGTH} characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "The URL is not valid."
    allowed = ("https", "http") if development else ("https",)
    if parts.scheme not in allowed:
        return "The URL must use https." if not development else "The URL must use http(s)."
    if not parts.hostname:
        return "The URL has no host."
    if parts.username or parts.password:
        return "The URL must not carry credentials."
    if port == 0:
        return "The URL's port is not valid."
    if parts.fragment:
        return "The URL must not have a fragment."
    literal = _literal_address(parts.hostname)
    if not development and literal is not None and address_refused(literal):
        return "The URL points to a loopback, private or link-local address."
    return None


def address_refused(address: IPAddress) -> bool:
    """Loopback, private, link-local (the metadata services 169.254.169.254
    and fd00:ec2::254 among them), multicast, reserved, or otherwise not
    globally routable."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_refused(address.ipv4_mapped)
    return not address.is_global or address.is_multicast


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
