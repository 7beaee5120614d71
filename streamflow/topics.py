"""Kafka topics of the pipeline, created idempotently with partitions and retention from settings.

The Kafka calls are :meth:`streamflow.kafka_access.KafkaHook.create_topics`; this module says which
topics the pipeline has and how they are configured (all from the ``STREAMFLOW_TOPIC_*`` settings).
"""

from __future__ import annotations

from streamflow.kafka_access import KafkaHook
from streamflow.settings import Settings


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create missing topics; return ``{topic: "created" | "exists"}``."""
    return KafkaHook(settings).create_topics(settings.topics, partitions=settings.topic_partitions,
                                             retention_ms=settings.topic_retention_ms, timeout_s=timeout_s)
