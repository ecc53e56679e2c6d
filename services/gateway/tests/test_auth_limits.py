"""The rate limits in Redis (the real one of ``make services-up``): two gateway replicas count
against one limit; a Redis that fails leaves each replica its own count, and refuses
nothing it would not have."""

from __future__ import annotations

import os
import uuid

from cmf_gateway.auth.limits import Limit, RedisLimiter

REDIS_URL = os.environ.get("CMF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def test_two_replicas_share_one_limit() -> None:
    key = f"test:{uuid.uuid4().hex}"
    limit = Limit(rate=0.5, burst=3)
    one, two = RedisLimiter(REDIS_URL), RedisLimiter(REDIS_URL)
    try:
        answers = [await (one if i % 2 else two).check([(key, limit)]) for i in range(4)]
        assert answers[:3] == [None, None, None]
        assert answers[3] is not None and 0 < answers[3] <= 2.0
        # A request refused on one key is counted on none of its keys.
        other = f"test:{uuid.uuid4().hex}"
        assert await one.check([(other, limit), (key, limit)]) is not None
        for _ in range(3):
            assert await two.check([(other, limit)]) is None
    finally:
        await one.close()
        await two.close()


async def test_a_redis_that_fails_leaves_the_limit_to_the_process() -> None:
    gone = RedisLimiter("redis://127.0.0.1:1/0", timeout_s=0.2)
    try:
        limit = Limit(rate=0.5, burst=2)
        assert await gone.check([("k", limit)]) is None
        assert await gone.check([("k", limit)]) is None
        assert await gone.check([("k", limit)]) is not None
    finally:
        await gone.close()
