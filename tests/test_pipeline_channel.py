"""Bounded channels: each full-queue policy, purge, close."""
import asyncio

import pytest

from engine.pipeline.channel import Channel, ChannelClosed, ChannelFull, Policy


async def test_drop_oldest_keeps_the_newest_and_counts():
    ch = Channel(3, Policy.DROP_OLDEST)
    for i in range(5):
        ch.put_nowait(i)
    assert ch.dropped == 2
    assert [await ch.get() for _ in range(3)] == [2, 3, 4]


async def test_reject_raises_when_full():
    ch = Channel(2, Policy.REJECT, "in")
    ch.put_nowait(1)
    ch.put_nowait(2)
    with pytest.raises(ChannelFull, match="'in' is full"):
        ch.put_nowait(3)


async def test_block_waits_for_the_consumer_and_never_drops():
    ch = Channel(2, Policy.BLOCK)
    got = []

    async def consume():
        for _ in range(10):
            got.append(await ch.get())
            await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    for i in range(10):
        await ch.put(i)
        assert len(ch) <= 2
    await task
    assert got == list(range(10)) and ch.dropped == 0


async def test_purge_is_immediate_and_close_ends_consumers():
    ch = Channel(10, Policy.BLOCK)
    for i in range(6):
        ch.put_nowait(i)
    assert ch.purge(lambda i: i % 2 == 0) == 3
    assert list(ch) == [0, 2, 4]
    ch.close()
    assert [await ch.get() for _ in range(3)] == [0, 2, 4]
    with pytest.raises(ChannelClosed):
        await ch.get()
