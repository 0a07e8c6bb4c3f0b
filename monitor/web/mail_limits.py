"""How many confirmation mails the portal may send: per address and overall.

An artist's portal can subscribe any address, and each subscription mails a confirmation
link: unlimited, the portal is a mail cannon (23 mails a second were measured) aimed at
strangers. :class:`MailLimiter` allows :data:`PER_ADDRESS` mails per address per
:data:`ADDRESS_WINDOW_S` and :data:`OVERALL` mails per :data:`OVERALL_WINDOW_S` in all. Its
memory is bounded: the overall limit caps how many addresses can be mailed within one
address window, and :data:`MAX_ADDRESSES` (far above that) caps the table anyway.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

PER_ADDRESS = 3
ADDRESS_WINDOW_S = 3600.0
OVERALL = 30
OVERALL_WINDOW_S = 60.0
# 30 a minute is 1,800 addresses an hour: an entry expires before the table fills.
MAX_ADDRESSES = 10_000

TOO_MANY_FOR_ADDRESS = (
    "We already sent several confirmation mails to this address; try again in an hour."
)
TOO_MANY_OVERALL = "Too many confirmation mails are going out right now; try again in a minute."


class MailLimiter:
    """Sliding-window limits on confirmation mails (one instance per web app)."""

    def __init__(
        self,
        *,
        per_address: int = PER_ADDRESS,
        overall: int = OVERALL,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_address = per_address
        self._overall = overall
        self._max_addresses = max_addresses
        self._clock = clock
        self._sent: deque[float] = deque(maxlen=overall)
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()

    def refusal(self, address: str) -> str | None:
        """Why a mail to ``address`` may not go now (one sentence), or None; when None,
        the mail is counted."""
        now = self._clock()
        key = address.strip().lower()
        recent = self._by_address.get(key, deque())
        while recent and recent[0] <= now - ADDRESS_WINDOW_S:
            recent.popleft()
        if len(recent) >= self._per_address:
            return TOO_MANY_FOR_ADDRESS
        if len(self._sent) >= self._overall and self._sent[0] > now - OVERALL_WINDOW_S:
            return TOO_MANY_OVERALL
        self._sent.append(now)
        recent.append(now)
        self._by_address[key] = recent
        self._by_address.move_to_end(key)
        while len(self._by_address) > self._max_addresses:
            self._by_address.popitem(last=False)
        return None
