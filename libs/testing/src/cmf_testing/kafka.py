"""Fresh topics on the test Kafka (``make services-up``), for tests that run the event bus."""

from __future__ import annotations

import os
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cmf_common.kafka import MAX_MESSAGE_BYTES, dlq_topic

KAFKA_BOOTSTRAP = os.environ.get("CMF_TEST_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


class KafkaUnreachable(AssertionError):
    """The test Kafka does not answer; the message says how to start it."""


async def create_topic(
    partitions: int = 3, prefix: str = "test", bootstrap: str = KAFKA_BOOTSTRAP
) -> str:
    """A new topic ``<prefix>.<random>`` and its dead-letter topic, both taking messages as
    large as the producer sends (the broker's own default is 1 MB); its name."""
    name = f"{prefix}.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
    except Exception as exc:
        raise KafkaUnreachable(
            f"Kafka is not reachable at {bootstrap} ({exc}); run `make services-up`"
        ) from exc
    try:
        limit = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
        await admin.create_topics(
            [
                NewTopic(name, partitions, 1, topic_configs=limit),
                NewTopic(dlq_topic(name), 1, 1, topic_configs=limit),
            ]
        )
    finally:
        await admin.close()
    return name
