"""The worker's end of an assistant WebSocket that the front door relays.

The client's socket ends at the front door; the session (and the whole protocol of
engine/transports/ws.py) runs on the worker. ``RelaySocket`` looks like the aiohttp
``WebSocketResponse`` that ``AssistantConnection`` drives: messages the front door hands in come
out of ``async for``, and what the connection sends waits in an outbox the front door drains with
long polls (``take``). Order is kept both ways (one queue each way, one poller per socket).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib

from aiohttp import WSCloseCode, WSMessage, WSMsgType

# outbox entries: ("text", str) or ("close", code, reason)
TEXT, CLOSE = "text", "close"


class RelaySocket:
    def __init__(self) -> None:
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._outbox: collections.deque = collections.deque()
        self._ready = asyncio.Event()
        self.closed = False          # the worker side closed it (AssistantConnection reads this)
        self.peer_gone = False       # the client went away (the front door said so)

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
        self._ready.clear()
        return out

    def _push(self, item: tuple) -> None:
        self._outbox.append(item)
        self._ready.set()
