"""The worker's end of an assistant WebSocket that the front door relays.

The client's socket ends at the front door; the session (and the whole protocol of
engine/transports/ws.py) runs on the worker. ``RelaySocket`` looks like the aiohttp
``WebSocketResponse`` that ``AssistantConnection`` drives: messages the front door hands in come
out of ``async for``, and what the connection sends waits in an outbox the front door drains with
long polls (``take``). Order is kept both ways (one queue each way, one poller per socket).
Binary messages (motion mode: one MotionFrame + its PCM per frame) are a real-time stream: when
the front door falls behind by more than ``MAX_BINARY_QUEUED`` of them, the oldest are dropped
(``dropped_binary`` counts them) rather than letting the outbox grow without bound.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib

from aiohttp import WSCloseCode, WSMessage, WSMsgType

# outbox entries: ("text", str), ("binary", bytes) or ("close", code, reason)
TEXT, BINARY, CLOSE = "text", "binary", "close"
MAX_BINARY_QUEUED = 50       # motion frames waiting for the front door's poll (2 s at 25 fps)


class RelaySocket:
    def __init__(self) -> None:
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._outbox: collections.deque = collections.deque()
        self._ready = asyncio.Event()
        self.closed = False          # the worker side closed it (AssistantConnection reads this)
        self.peer_gone = False       # the client went away (the front door said so)
        self.binary_queued = 0
        self.dropped_binary = 0

    # ---- the AssistantConnection side (aiohttp's WebSocketResponse interface) ----------------
    def __aiter__(self):
        return self

    async def __anext__(self) -> WSMessage:
        if self.closed:
            raise StopAsyncIteration
        msg = await self._inbox.get()
        if msg is None or self.closed:
            raise StopAsyncIteration
        return msg

    async def send_str(self, data: str) -> None:
        if self.closed:
            raise ConnectionResetError("the relayed socket is closed")
        self._push((TEXT, data))

    async def send_bytes(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("the relayed socket is closed")
        if self.binary_queued >= MAX_BINARY_QUEUED:
            oldest = next(i for i, item in enumerate(self._outbox) if item[0] == BINARY)
            del self._outbox[oldest]
            self.binary_queued -= 1
            self.dropped_binary += 1
        self.binary_queued += 1
        self._push((BINARY, bytes(data)))

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> bool:
        if self.closed:
            return False
        self.closed = True
        reason = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        self._push((CLOSE, int(code), reason))
        self._inbox.put_nowait(None)
        return True

    # ---- the front door side (called through the actor) -------------------------------------
    def feed(self, items: list) -> None:
        """Client messages in arrival order: ("text", str) or ("binary", bytes)."""
        for kind, data in items:
            if self.closed:
                return
            mtype = WSMsgType.TEXT if kind == TEXT else WSMsgType.BINARY
            self._inbox.put_nowait(WSMessage(mtype, data, None))

    def client_closed(self) -> None:
        self.peer_gone = True
        self._inbox.put_nowait(None)

    async def take(self, wait_s: float) -> list:
        """Everything queued for the client; waits up to ``wait_s`` for the first item. After a
        ``close`` entry nothing more comes."""
        if not self._outbox:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_s)
        out = list(self._outbox)
        self._outbox.clear()
        self.binary_queued = 0
        self._ready.clear()
        return out

    def _push(self, item: tuple) -> None:
        self._outbox.append(item)
        self._ready.set()
