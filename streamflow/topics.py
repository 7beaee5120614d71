"""Kafka topics of the pipeline, created idempotently with partitions and retention from settings."""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streamflow.logs import get_log
from streamflow.settings import Settings

log = get_log("streamflow.topics")


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> dict[str, str]:
    """Create missing topics; return ``{topic: "created" | "exists"}``."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    result = {t: "exists" for t in settings.topics if t in existing}
    missing = [
        NewTopic(
            topic,
            num_partitions=settings.topic_partitions,
            replication_factor=1,
            config={"retention.ms": str(settings.topic_retention_ms)},
        )
        for topic in settings.topics
        if topic not in existing
    ]
    if missing:
        for topic, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
            try:
                future.result()
                result[topic] = "created"
                log.info("created topic", topic=topic, partitions=settings.topic_partitions)
            except KafkaException as error:
                if error.args[0].code() == 36:  # TOPIC_ALREADY_EXISTS: created concurrently
                    result[topic] = "exists"
                else:
                    raise
    return result
