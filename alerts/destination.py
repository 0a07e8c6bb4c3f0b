"""Where a webhook may be sent: public addresses only, unless the operator allows private
or loopback ones (``allow_private``, ``allow_loopback`` per endpoint).

Link-local (cloud metadata services live there), multicast, unspecified and reserved
addresses are always refused. The check runs before each delivery and again inside the
connector's resolver (`GuardedResolver`, reading the endpoint's policy from a context
variable set around the request), so a name that re-resolves to a private address between
the two cannot slip through. The connector must not cache DNS (``use_dns_cache=False``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    allow_private: bool = False
    allow_loopback: bool = False


_POLICY: ContextVar[DestinationPolicy] = ContextVar("webhook_destination_policy")


@contextmanager
def destination_policy(policy: DestinationPolicy) -> Iterator[None]:
    """Apply ``policy`` to the connections opened inside the block (this task only)."""
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


class DestinationRefused(OSError):
    """A webhook host resolved to an address the policy refuses."""


def refusal(address: str, policy: DestinationPolicy) -> str | None:
    """Why ``address`` is refused, or None when it may be used."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "a link-local, multicast or reserved address"
    if not ip.is_global:
        return None if policy.allow_private else "a private address"
    return None


def check_addresses(host: str, addresses: list[str], policy: DestinationPolicy) -> None:
    """Raise `DestinationRefused` when any of ``host``'s addresses is refused."""
    for address in addresses:
        reason = refusal(address, policy)
        if reason is not None:
            raise DestinationRefused(f"{host} resolves to {reason} ({address})")


async def check_host(host: str, port: int, policy: DestinationPolicy) -> None:
    """Resolve ``host`` (or read it as an IP literal) and check every address."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [str(info[4][0]) for info in infos]
    check_addresses(host, addresses, policy)


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing hosts that resolve to refused addresses."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: Any = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        policy = _POLICY.get(DestinationPolicy())
        check_addresses(host, [r["host"] for r in results], policy)
        return results

    async def close(self) -> None:
        await self._inner.close()
