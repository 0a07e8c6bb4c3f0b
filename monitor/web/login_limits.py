"""Sign-in rate limits, kept in memory (one process serves the web UI).

Two sliding windows, each counting attempts from the moment they start (so 64 parallel
tries are counted before any password is hashed) and forgetting one when it succeeds:

- per address: at most ``MAX_ADDRESS_FAILURES`` failed sign-ins per client address (an IPv6
  address counts by its /64), whatever emails it tries;
- per account: at most ``MAX_ACCOUNT_FAILURES`` per registered email, from any address.
  Only emails of real accounts are counted here, so the table holds one entry per user
  and junk emails cannot push a real account's count out.

The address table is bounded: stale entries go first, and when it is full of live ones a
new address shares one overflow window instead of evicting another address's count.
Nothing is ever evicted while it is live, so no flood (of junk emails: those only count
per address; of addresses: those only fill the overflow window) can lift a lockout;
memory stays at most ``max_addresses`` windows plus one per user, each holding at most
its limit of timestamps (a blocked attempt is not recorded).

Trade-offs, chosen on purpose: once the table is full, new addresses share one window,
so a flood from more than ``max_addresses`` live addresses slows sign-ins from new
addresses (never from the ones already counted, nor signed-in users); and anyone may lock
an account for ``WINDOW_S`` by failing on it, which tells them the email is registered
(a 429 where an unknown email keeps getting 401, within the address limit).
A blocked attempt is told how long to wait (``Retry-After``).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Callable

MAX_ADDRESS_FAILURES = 20
MAX_ACCOUNT_FAILURES = 10
WINDOW_S = 300.0
MAX_ADDRESSES = 10_000
_OVERFLOW = "overflow"


def address_key(address: str) -> str:
    """The address an attempt is counted under: an IPv6 address by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6 and getattr(ip, "ipv4_mapped", None) is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


class LoginLimiter:
    def __init__(
        self,
        max_address_failures: int = MAX_ADDRESS_FAILURES,
        max_account_failures: int = MAX_ACCOUNT_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self._max_address = max_address_failures
        self._max_account = max_account_failures
        self._window_s = window_s
        self._clock = clock
        self._max_addresses = max_addresses
        self._addresses: dict[str, deque[float]] = {}
        self._accounts: dict[str, deque[float]] = {}

    def retry_after(self, address: str, email: str) -> int | None:
        """Whole seconds to wait when this address or account has used up its tries."""
        waits = [
            self._wait(self._addresses.get(self._address(address)), self._max_address),
            self._wait(self._accounts.get(_account(email)), self._max_account),
        ]
        blocked = [w for w in waits if w is not None]
        return max(blocked) if blocked else None

    def attempt(self, address: str) -> None:
        """Count an attempt from this address as failed until :meth:`succeeded`; called
        before anything is awaited, so parallel attempts all count."""
        self._window(self._addresses, self._address(address, adding=True)).append(self._clock())

    def attempt_account(self, email: str) -> int | None:
        """Count an attempt on a registered account; the seconds to wait when it is one
        over the account's limit (then no password should be checked)."""
        failures = self._window(self._accounts, _account(email))
        failures.append(self._clock())
        return self._wait(failures, self._max_account + 1)

    def succeeded(self, address: str, email: str) -> None:
        """Forget the attempt just counted: a right password is no failure."""
        for table, key in (
            (self._addresses, self._address(address)),
            (self._accounts, _account(email)),
        ):
            if table.get(key):
                table[key].pop()

    def _address(self, address: str, *, adding: bool = False) -> str:
        """The window an address is counted in: its own, or the overflow one when the
        table is full of live windows (stale ones are dropped first when adding)."""
        key = address_key(address)
        if key in self._addresses:
            return key
        if adding and len(self._addresses) >= self._max_addresses:
            self._prune()
        return key if len(self._addresses) < self._max_addresses else _OVERFLOW

    def _wait(self, failures: deque[float] | None, limit: int) -> int | None:
        if failures is None:
            return None
        self._expire(failures)
        if len(failures) < limit:
            return None
        return max(1, math.ceil(failures[-limit] + self._window_s - self._clock()))

    def _window(self, table: dict[str, deque[float]], key: str) -> deque[float]:
        failures = table.setdefault(key, deque())
        self._expire(failures)
        return failures

    def _expire(self, failures: deque[float]) -> None:
        cutoff = self._clock() - self._window_s
        while failures and failures[0] <= cutoff:
            failures.popleft()

    def _prune(self) -> None:
        cutoff = self._clock() - self._window_s
        for key in [k for k, v in self._addresses.items() if not v or v[-1] <= cutoff]:
            del self._addresses[key]


def _account(email: str) -> str:
    return email.strip().lower()
