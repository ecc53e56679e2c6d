"""Gauges are read best effort: a reading that fails or hangs never fails, stalls or faults the
loop that carries it, and it is tried again on its next turn."""

from __future__ import annotations

import asyncio

from cmf_common.workers import GaugeReading, Housekeeping, LoopSupervisor


async def test_a_failing_gauge_leaves_its_loop_live_where_housekeeping_would_not() -> None:
    loop = LoopSupervisor("gauges-test")
    tries: list[int] = []

    async def broken() -> None:
        tries.append(1)
        raise RuntimeError("a bug in the reading")

    gauge = GaugeReading(loop, "backlog", broken, every_s=0)
    await gauge.run_if_due()
    await gauge.run_if_due()
    assert len(tries) == 2, "tried again on its next turn"
    await loop.check()  # live

    await Housekeeping(loop, broken, every_s=0).run_if_due()
    assert loop.faults, "the loop's own housekeeping does fault it (the contrast)"


async def test_a_hanging_gauge_is_cut_off_at_its_timeout() -> None:
    loop = LoopSupervisor("gauges-test-hang")

    async def hangs() -> None:
        await asyncio.sleep(60)

    gauge = GaugeReading(loop, "dlq", hangs, every_s=0, timeout_s=0.05)
    await asyncio.wait_for(gauge.run_if_due(), timeout=5)
    assert gauge.failing
    await loop.check()
