from __future__ import annotations

import asyncio

from bot.locks import KeyedLocks


async def test_one_key_at_a_time_in_arrival_order_and_nothing_kept_after():
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []

    async def work(key: str, name: str, delay: float) -> None:
        async with locks.hold(key):
            order.append(f"{name}+")
            await asyncio.sleep(delay)
            order.append(f"{name}-")

    tasks = [asyncio.create_task(work("a", "a1", 0.02)), asyncio.create_task(work("a", "a2", 0))]
    tasks.append(asyncio.create_task(work("b", "b1", 0)))
    await asyncio.sleep(0)
    assert len(locks) == 2  # two keys in use
    await asyncio.gather(*tasks)
    assert order.index("a1-") < order.index("a2+")  # one holder of "a" at a time, first come first
    assert order.index("b1-") < order.index("a1-")  # "b" did not wait for "a"
    assert len(locks) == 0  # no lock kept for chats that are done


async def test_a_failing_holder_releases_the_key():
    locks: KeyedLocks[int] = KeyedLocks()
    try:
        async with locks.hold(1):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0
    async with locks.hold(1):
        assert len(locks) == 1
