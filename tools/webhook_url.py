"""Where webhooks may be sent: http(s) URLs whose host is public, or listed in VOC_WEBHOOK_ALLOW_HOSTS.

A webhook makes this service send requests to a URL someone typed. Left open, that reaches the
machine itself and the bank's internal network (a cloud metadata address, an admin console), so
loopback, private, link-local and other non-public addresses are refused unless an operator lists
the host name or a CIDR containing its addresses. The host name is resolved and every address it
resolves to must pass; the dispatcher checks again before each attempt, since a name can change.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
MAX_URL = 2000


class WebhookUrlError(ValueError):
    """A webhook URL that may not be used; the message says why, naming the host at most."""


@dataclass(frozen=True)
class AllowList:
    """VOC_WEBHOOK_ALLOW_HOSTS: host names (exact, any case) and networks."""

    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        names, networks = set(), []
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                names.add(item.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in net for net in self.networks if net.version == address.version)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as the HTTP client will use it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def check_url(url: str, allow: AllowList, resolve: Resolver = system_resolver) -> str:
    """``url`` if webhooks may be sent there, else :class:`WebhookUrlError` saying what is wrong.

    Messages never repeat the URL or its host (the HTTP door does not echo what a caller sent);
    a command line may show its user the host it typed.
    """
    if not isinstance(url, str) or not url.strip():
        raise WebhookUrlError("the webhook URL is empty")
    url = url.strip()
    if len(url) > MAX_URL:
        raise WebhookUrlError(f"the webhook URL is longer than {MAX_URL} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise WebhookUrlError("the webhook URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlError("the webhook URL is not a valid URL (check the host and port)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"'{scheme}:'" if scheme else "none"
        raise WebhookUrlError(f"the webhook URL must start with http:// or https:// (its scheme is {shown})")
    host = parts.hostname
    if not host:
        raise WebhookUrlError("the webhook URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError(
            "the webhook URL must not carry a user name or password; receivers authenticate "
            "deliveries by their signature"
        )
    if parts.fragment:
        raise WebhookUrlError("the webhook URL must not have a #fragment")
    if allow.allows_name(host):
        return url
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port or 443)]
        except (OSError, UnicodeError, ValueError):
            raise WebhookUrlError("the webhook URL's host name does not resolve to an address") from None
        if not addresses:
            raise WebhookUrlError("the webhook URL's host name does not resolve to an address")
    for address in addresses:
        if not _public(address) and not allow.allows_address(address):
            what = "is" if literal is not None else "resolves to"
            raise WebhookUrlError(
                f"the webhook URL's host {what} a loopback, private, link-local or otherwise non-public "
                "address; list the host or its network in VOC_WEBHOOK_ALLOW_HOSTS to allow it"
            )
    return url
