"""Per-client-IP limits of the server (docs/security.md): a token bucket on new requests and
a cap on the connections one IP holds at once.

``TokenBuckets(rate, per_s)``: each IP may start ``rate`` requests at once, then one every
``per_s / rate`` seconds (the bucket refills continuously). ``take(ip)`` -> 0.0 when allowed,
else the seconds until the next request would be. ``ConnectionCounts``: live WebSockets per
IP. Both forget idle IPs, so memory is bounded by the active clients.
"""
from __future__ import annotations

import time

MAX_TRACKED = 10000   # above this many IPs, full (idle) buckets are forgotten


class TokenBuckets:
    def __init__(self, rate: int, per_s: float, clock=time.monotonic) -> None:
        self.capacity, self.refill = float(rate), rate / per_s if per_s > 0 else 0.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}   # ip -> (tokens, time)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0 and self.refill > 0

    def take(self, ip: str) -> float:
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, then = self._buckets.get(ip, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.refill)
        if tokens < 1.0:
            self._buckets[ip] = (tokens, now)
            return (1.0 - tokens) / self.refill
        self._buckets[ip] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_TRACKED:
            self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        full = [ip for ip, (t, then) in self._buckets.items()
                if t + (now - then) * self.refill >= self.capacity]
        for ip in full:
            del self._buckets[ip]


class ConnectionCounts:
    def __init__(self) -> None:
        self._n: dict[str, int] = {}

    def get(self, ip: str) -> int:
        return self._n.get(ip, 0)

    def add(self, ip: str) -> None:
        self._n[ip] = self._n.get(ip, 0) + 1

    def remove(self, ip: str) -> None:
        n = self._n.get(ip, 0) - 1
        if n > 0:
            self._n[ip] = n
        else:
            self._n.pop(ip, None)
