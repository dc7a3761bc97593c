"""Where outbound webhooks may be sent: public addresses only, unless the operator allows more.

A tenant admin chooses the URL. Without this check Questline would POST signed requests to
whatever it names: loopback, the cloud metadata address (169.254.169.254), or services on the
private network behind Questline (server-side request forgery). The URL is checked when it is
subscribed (literal addresses and ``localhost``) and again before every delivery, after DNS, so
a name that later resolves to a private address is refused too.

Limit, stated: the address is resolved here and again by the HTTP client a moment later, so a
DNS server that answers differently within that moment (rebinding) is not stopped by this check
alone; deployments that need that guarantee route egress through a proxy that enforces it.
``QUESTLINE_OUTBOUND_ALLOW_PRIVATE=true`` turns the check off (development, on-premises hooks).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefused(ValueError):
    """The URL leads somewhere outbound webhooks must not go."""


def _not_public(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination, or None if it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_private:
        return "a private network address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EgressRefused("the URL must be http or https")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number, or out of range
        raise EgressRefused(f"the URL's port is not valid: {exc}") from None
    if not host:
        raise EgressRefused("the URL has no host")
    return host, port or (443 if parts.scheme == "https" else 80)


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse, without a DNS lookup, a URL whose host is plainly not public: an address literal
    outside the public internet, or ``localhost``. Used when a URL is subscribed."""
    host, _port = _host_port(url)
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise EgressRefused(f"{host} is this machine; outbound webhooks go to public addresses")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked after resolving, at delivery
    reason = _not_public(ip)
    if reason is not None:
        raise EgressRefused(f"{host} is {reason}; outbound webhooks go to public addresses")


def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse a URL unless every address its host resolves to is public. Used before each
    delivery (a name may resolve differently than when it was subscribed)."""
    check_url(url, allow_private=allow_private)
    if allow_private:
        return
    host, port = _host_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressRefused(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        reason = _not_public(ipaddress.ip_address(address))
        if reason is not None:
            raise EgressRefused(f"{host} resolves to {address}, {reason}")
