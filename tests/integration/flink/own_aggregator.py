"""The catalog's realtime_aggregator spec on topics, a consumer group and a cluster of its own, for tests
that need to deploy it with other options (a spec outside the catalog gets its own local cluster)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from streamflow.flink_spec import FlinkJobSpec, load_all
from streamflow.settings import Settings
from tests.scratch_topics import scratch_topic


@dataclasses.dataclass(frozen=True)
class OwnAggregator:
    settings: Settings  # the stack's, with the transactions and alerts topics bound to the scratch ones
    spec: FlinkJobSpec
    run: str  # unique per use: group id, job name and the ids the test's events carry


@contextmanager
def own_aggregator(stack: Settings, name: str, partitions: int, *extra_args: str,
                   **changes: Any) -> Iterator[OwnAggregator]:
    """Scratch topics ``test-<name>-txns`` / ``-alerts`` (deleted afterwards) and the aggregator's spec named
    ``test-aggregator-<name>`` reading them, with ``extra_args`` and ``changes`` (dataclass fields)."""
    with scratch_topic(stack, f"test-{name}-txns", partitions) as txns, \
            scratch_topic(stack, f"test-{name}-alerts", partitions) as alerts:
        run = uuid.uuid4().hex[:8]
        base = load_all()["realtime-aggregator"]
        args = list(base.args)
        args[args.index("--group-id") + 1] = f"test-{name}-{run}"
        args += [*extra_args, "--job-name", f"test-{name}-{run}"]
        spec = dataclasses.replace(base, name=f"test-aggregator-{name}", args=tuple(args), **changes)
        yield OwnAggregator(stack.model_copy(update={"topic_transactions": txns, "topic_alerts": alerts}), spec, run)
