"""Bounded async channels between stages, each with an explicit full-queue policy.

- ``BLOCK``: the producer waits (``await put``) — for media that must never be
  dropped (the avatar's speech audio, offline frames).
- ``DROP_OLDEST``: the oldest item is discarded and counted — for live video
  to a consumer that fell behind (it wants the newest picture).
- ``REJECT``: ``put_nowait`` raises ``ChannelFull`` — for input that a caller
  must be told about (e.g. a client pushing audio far faster than real time).

``purge(keep)`` removes items at once (interruption: no draining).
"""
from __future__ import annotations

import asyncio
import collections
import enum
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Policy(enum.Enum):
    BLOCK = "block"
    DROP_OLDEST = "drop_oldest"
    REJECT = "reject"


class ChannelFull(RuntimeError):
    """A REJECT channel is full."""


class ChannelClosed(RuntimeError):
    """Get/put on a closed channel (after its remaining items were taken)."""


class Channel(Generic[T]):
    def __init__(self, capacity: int, policy: Policy, name: str = "") -> None:
        if capacity < 1:
            raise ValueError("channel capacity must be >= 1")
        self.capacity, self.policy, self.name = capacity, policy, name
        self._items: collections.deque[T] = collections.deque()
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self.closed = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        """The queued items, oldest first (a snapshot; does not consume)."""
        return iter(list(self._items))

    def _update(self) -> None:
        (self._not_empty.set if self._items or self.closed else self._not_empty.clear)()
        (self._not_full.set if len(self._items) < self.capacity or self.closed else self._not_full.clear)()

    def put_nowait(self, item: T) -> None:
        if self.closed:
            raise ChannelClosed(f"channel {self.name!r} is closed")
        if len(self._items) >= self.capacity:
            if self.policy is Policy.DROP_OLDEST:
                self._items.popleft()
                self.dropped += 1
            elif self.policy is Policy.REJECT:
                raise ChannelFull(f"channel {self.name!r} is full ({self.capacity} items)")
            else:
                raise ChannelFull(f"channel {self.name!r} is full; use 'await put' on a BLOCK channel")
        self._items.append(item)
        self._update()

    async def put(self, item: T) -> None:
        if self.policy is Policy.BLOCK:
            while len(self._items) >= self.capacity and not self.closed:
                await self._not_full.wait()
        self.put_nowait(item)

    async def get(self) -> T:
        while not self._items:
            if self.closed:
                raise ChannelClosed(f"channel {self.name!r} is closed")
            await self._not_empty.wait()
        item = self._items.popleft()
        self._update()
        return item

    def get_nowait(self) -> T | None:
        if not self._items:
            return None
        item = self._items.popleft()
        self._update()
        return item

    def purge(self, keep: Callable[[T], bool] = lambda _: False) -> int:
        """Drop every item for which ``keep`` is false, at once; return how many."""
        before = len(self._items)
        self._items = collections.deque(i for i in self._items if keep(i))
        self._update()
        return before - len(self._items)

    def close(self) -> None:
        self.closed = True
        self._update()
