"""One Flink job at a time on a preloaded backlog: where the streaming cost goes (issue 13, steps 2-3).

For each variant: a fresh topic is preloaded with the same generator stream (the backlog), one job
is deployed on its own local cluster through the local runtime (``flink_local_lifecycle.deploy``, the spec
from ``k8s/base/flink`` with only the variant's changes: source topic, group id, parallelism and
Flink configuration keys, named in the figure), and drained. Measured while it drains:

- events/s: backlog size / (last counter change - first record), from the vertices' read/write
  counters in Flink's REST API (``/jobs/<jid>``), or from bronze row counts for jobs that end in a
  JDBC sink inside a single chained vertex; start-up is excluded, it is measured elsewhere;
- CPU: TaskManager process-group CPU seconds over the same interval, as ms per 1,000 events
  (other helpers' load on the shared cores inflates wall time far more than CPU time);
- ``busyTimeMsPerSecond`` and ``backPressuredTimeMsPerSecond`` per vertex (subtask average,
  sampled every 2 s while records flow).

The cluster is stopped and its state deleted after each variant. ``legacy`` variants run the code
as committed before issue 13 (``git archive`` of :data:`LEGACY_COMMIT`, exported once to a
temporary directory), so before/after are measured on the same machine in the same session.

    python -m bench.flink_stages [variant ...]      # default: every variant in VARIANTS
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BACKLOG = 50_000
SEED = 4242
# LEGACY_COMMIT: the last commit before issue 13 changed the detector.
LEGACY_COMMIT = "e5bd98effbf6dfac2ca8c7b32b88f0952a779546"  # pragma: allowlist secret
LEGACY_DIR = Path(f"/tmp/streamflow-bench-legacy-{LEGACY_COMMIT[:8]}")


@dataclass(frozen=True)
class Variant:
    name: str
    job: str  # the FlinkDeployment whose spec is the base
    description: str
    parallelism: int | None = None
    configuration: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    module: str | None = None  # replace the spec's -pym module
    legacy: bool = False
    count: str = "vertices"  # or "bronze": rows with the backlog's transaction_id prefix
    backlog: int = BACKLOG  # events preloaded; a fast variant needs more for a drain of several seconds


HASHMAP = {"state.backend.type": "hashmap", "state.backend.incremental": "false"}
ROCKSDB = {"state.backend.type": "rocksdb", "state.backend.incremental": "true"}
VARIANTS = [
    Variant("detector-legacy-p2-rocksdb", "fraud-detector", "code and spec before issue 13 (RocksDB, p=2)",
            legacy=True),
    Variant("detector-p2-rocksdb", "fraud-detector", "current code; RocksDB, p=2", configuration=ROCKSDB),
    Variant("detector-p2-hashmap", "fraud-detector", "current code; HashMap backend, p=2", configuration=HASHMAP),
    Variant("detector-p1-hashmap", "fraud-detector", "current code; HashMap backend, p=1",
            parallelism=1, configuration=HASHMAP),
    Variant("detector-p1-rocksdb", "fraud-detector", "current code; RocksDB, p=1", parallelism=1,
            configuration=ROCKSDB),
    *[Variant(f"skeleton-{stage}-p1-hashmap", "fraud-detector",
              f"detector graph, keyed Python operator doing {stage} (bench/flink_detector_skeleton.py), "
              "blackhole sink, HashMap, p=1", parallelism=1, configuration=HASHMAP,
              module="bench.flink_detector_skeleton", extra_args=("--stage", stage))
      for stage in ("noop", "state", "parse", "score")],
    Variant("combined-p1-hashmap-blackhole", "transaction-processor",
            "one job, one read, one parse: typed rows -> bronze / Java keyBy -> scoring / SQL windows; "
            "blackhole sinks (bench/flink_combined_skeleton.py), HashMap, p=1", parallelism=1,
            configuration=HASHMAP, module="bench.flink_combined_skeleton", extra_args=("--sinks", "blackhole")),
    Variant("combined-p1-hashmap-jdbc", "transaction-processor",
            "as combined-p1-hashmap-blackhole with the real JDBC sinks (through ADR 0009's inboxes)", parallelism=1,
            configuration=HASHMAP, module="bench.flink_combined_skeleton", extra_args=("--sinks", "jdbc"),
            count="bronze"),
    Variant("processor-p2", "transaction-processor", "transaction_processor as specified", count="bronze"),
    Variant("processor-p1", "transaction-processor", "transaction_processor, p=1", parallelism=1, count="bronze"),
    Variant("aggregator-p1", "realtime-aggregator", "realtime_aggregator, RocksDB (p=1)", configuration=ROCKSDB),
    Variant("aggregator-p1-hashmap", "realtime-aggregator", "realtime_aggregator, HashMap backend",
            configuration=HASHMAP),
    # the Java fast path (ADR 0012): each job alone on a backlog long enough for a drain of many seconds
    # (the aggregator's alerts topic is empty here: idle after 1 s, so its windows close and are written as
    # in the pipeline, where the detector's alerts move the clock)
    *[Variant(f"{job.split('-')[1]}-fast-p{p}-300k", job, f"{job} as specified but p={p}, 300k events",
              parallelism=p, backlog=300_000, count="bronze" if job == "transaction-processor" else "vertices",
              extra_args=("--source-idle-seconds", "1") if job == "realtime-aggregator" else ())
      for job in ("transaction-processor", "fraud-detector", "realtime-aggregator") for p in (1, 2)],
    Variant("sql-ceiling-blackhole", "transaction-processor",
            "no Python: SQL reads Kafka, extracts transaction_id/event_time (JSON_VALUE), blackhole sink",
            parallelism=1, module="bench.flink_sql_ceiling", extra_args=("--sink", "blackhole")),
    Variant("sql-ceiling-jdbc", "transaction-processor",
            "no Python: Kafka -> JDBC upsert into bronze.raw_transactions, reWriteBatchedInserts=false",
            parallelism=1, module="bench.flink_sql_ceiling", extra_args=("--sink", "jdbc"), count="bronze"),
    Variant("sql-ceiling-jdbc-rewrite", "transaction-processor",
            "as sql-ceiling-jdbc with reWriteBatchedInserts=true on the JDBC URL",
            parallelism=1, module="bench.flink_sql_ceiling", extra_args=("--sink", "jdbc", "--rewrite-batched"),
            count="bronze"),
    Variant("sql-ceiling-inbox", "transaction-processor",
            "as sql-ceiling-jdbc-rewrite into bronze.raw_transactions_inbox (ADR 0009's trigger-routed inbox)",
            parallelism=1, module="bench.flink_sql_ceiling",
            extra_args=("--sink", "jdbc", "--rewrite-batched", "--table", "bronze.raw_transactions_inbox"),
            count="bronze"),
    # The floor of any design that keeps the real bronze sink (issue 13): no Python, no validation, no
    # detection, no metrics; both cores; a backlog long enough for a drain of many seconds.
    *[Variant(f"sql-ceiling-{sink}-p2", "transaction-processor",
              f"{description}, p=2 (both cores), 300k events", parallelism=2, module="bench.flink_sql_ceiling",
              extra_args=args, count=count, backlog=300_000)
      for sink, description, args, count in (
          ("blackhole", "no Python: SQL reads Kafka, JSON_VALUE, blackhole sink", ("--sink", "blackhole"), "vertices"),
          ("jdbc-rewrite", "no Python: Kafka -> JDBC upsert straight into bronze.raw_transactions, "
           "reWriteBatchedInserts=true", ("--sink", "jdbc", "--rewrite-batched"), "bronze"),
          ("inbox", "no Python: Kafka -> JDBC upsert into bronze.raw_transactions_inbox (ADR 0009's "
           "trigger-routed inbox, what the processor writes)",
           ("--sink", "jdbc", "--rewrite-batched", "--table", "bronze.raw_transactions_inbox"), "bronze"),
          ("shape-inbox", "as the inbox variant, each event validated in Java by the sound shape regex "
           "(flink_app.shape_check, REGEXP)",
           ("--sink", "jdbc", "--rewrite-batched", "--table", "bronze.raw_transactions_inbox", "--shape-check"),
           "bronze"))],
]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback http only
        return json.loads(response.read())


def _group_cpu_s(leader: int) -> float:
    """CPU seconds (user + system) of every live process in ``leader``'s process group or forked by it
    (PostgreSQL backends run in sessions of their own, their parent is the postmaster)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader or int(fields[1]) == leader:  # pgrp, ppid
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _source_metric(rest: str, jid: str, vid: str) -> tuple[str, str] | None:
    """(vertex id, metric id) of the Kafka source operator's numRecordsOut (a chained source has no
    vertex-level write count when its chain ends in a sink)."""
    listing = _get(f"{rest}/jobs/{jid}/vertices/{vid}/subtasks/metrics")
    for entry in listing:
        if entry["id"].startswith("Source") and entry["id"].endswith(".numRecordsOut"):
            return vid, entry["id"]
    return None


def _metric_sum(rest: str, jid: str, vid: str, metric: str) -> int:
    rows = _get(f"{rest}/jobs/{jid}/vertices/{vid}/subtasks/metrics?get={urllib.parse.quote(metric)}")
    return int(float(rows[0].get("sum", 0))) if rows else 0


def _machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle (all cores, every process, kernel included), from
    /proc/stat: what a design costs in total, broker and database included, not only its TaskManager."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _thread_cpu_s(leader: int) -> dict[str, float]:
    """CPU seconds per thread name (digits folded: "GC Thread#3" -> "GC Thread#N") in ``leader``'s
    process group: shows whether the time goes to the task threads or to GC, Kafka, timers..."""
    import re

    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[2]) != leader:
            continue
        key = re.sub(r"\d+", "N", name)
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def _legacy_root() -> Path:
    if not (LEGACY_DIR / "flink_app").exists():
        LEGACY_DIR.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", LEGACY_COMMIT, "flink_app", "generator", "k8s/base/flink"],
                                 cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(LEGACY_DIR)], input=archive, check=True)
    return LEGACY_DIR


def preload(settings: Any, topic: str, events: int = BACKLOG) -> str:
    """Create ``topic`` like transactions.raw and write ``events`` events; returns the transaction_id prefix."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=settings.topic_partitions,
                                                replication_factor=1)]).values():
        future.result(timeout=30)
    subprocess.run([str(settings.venv_python("generator")), "-m", "generator", "--seed", str(SEED),
                    "--total-events", str(events), "--events-per-second", "0", "--start-time",
                    "2026-01-01T00:00:00.000Z", "--bootstrap-servers", settings.kafka_bootstrap, "--topic", topic],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"t-{SEED}-"


def _bronze_count(settings: Any, prefix: str) -> int:
    import psycopg

    with psycopg.connect(settings.warehouse_dsn) as conn:
        row = conn.execute("SELECT count(*) FROM bronze.raw_transactions WHERE transaction_id LIKE %s",
                           (prefix + "%",)).fetchone()
    return int(row[0]) if row else 0


def _clear_bronze(settings: Any, prefix: str) -> None:
    import psycopg

    with psycopg.connect(settings.warehouse_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM bronze.raw_transactions WHERE transaction_id LIKE %s", (prefix + "%",))


def reading(settings: Any, topic: str) -> Any:
    """``settings`` whose transactions topic is ``topic``: the runtime binds every job's topic options to
    the settings (streamflow.catalog.bind_job_topics), so a bench points a job at its preloaded topic
    here, never through the spec's arguments (they would be overwritten)."""
    return settings.model_copy(update={"topic_transactions": topic})


def variant_spec(variant: Variant, settings: Any, topic: str) -> Any:
    """The variant's spec; deploy it with ``reading(settings, topic)``."""
    from streamflow.flink_spec import load_all

    base = load_all((_legacy_root() if variant.legacy else ROOT) / "k8s/base/flink")[variant.job]
    args = list(base.args)
    group = f"bench-{variant.name}-{uuid.uuid4().hex[:6]}"
    for flag, value in (("--group-id", group), ("--job-name", variant.name)):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    if variant.module:
        args[args.index("-pym") + 1] = variant.module
    args += list(variant.extra_args)
    configuration = {**base.flink_configuration, **variant.configuration}
    return dataclasses.replace(base, name=f"stage-{variant.name}", parallelism=variant.parallelism or base.parallelism,
                               args=tuple(args), flink_configuration=configuration)


def drain(variant: Variant, spec: Any, settings: Any, prefix: str, timeout_s: float = 900) -> dict[str, Any]:
    from streamflow.runtime import flink_local_config, flink_local_lifecycle
    from streamflow.stack.process import PidFile

    flink_local_lifecycle.start_cluster(spec, settings, timeout_s=300)  # a loaded machine needs more than the default
    handle = flink_local_lifecycle.deploy(spec, settings)
    rest, jid = handle.rest_url, handle.job_id
    leader = flink_local_config.layout(spec, settings).taskmanager_pid.alive_pid() or 0
    services = {name: PidFile(settings.state_dir / "run" / f"{name}.pid").alive_pid() or 0
                for name in ("postgres", "kafka")}
    began = time.monotonic()
    first: tuple[float, float, float] | None = None  # (time, TM cpu, machine cpu) at the first record
    last_change: tuple[float, float, float] | None = None
    previous: Any = None
    busy: dict[str, list[tuple[float, float]]] = {}
    next_busy = 0.0
    names: dict[str, str] = {}
    done_reason = "timeout"
    source_metric: tuple[str, str] | None = None
    threads_first: dict[str, float] = {}
    threads_last: dict[str, float] = {}
    loads: list[float] = []
    services_first: dict[str, float] = {}
    services_last: dict[str, float] = {}
    while time.monotonic() - began < timeout_s:
        now, cpu, machine = time.monotonic(), _group_cpu_s(leader), _machine_busy_s()
        detail = _get(f"{rest}/jobs/{jid}")
        if detail.get("state") in {"FAILED", "CANCELED"}:
            done_reason = f"job {detail.get('state')}"
            break
        vertices = detail.get("vertices", [])
        names = {v["id"]: v["name"] for v in vertices}
        counters = tuple((v["metrics"].get("read-records", 0), v["metrics"].get("write-records", 0)) for v in vertices)
        if vertices and source_metric is None:
            source_metric = _source_metric(rest, jid, vertices[0]["id"])
        if source_metric:
            counters += ((_metric_sum(rest, jid, *source_metric), 0),)
        if variant.count == "bronze":
            counters = ((_bronze_count(settings, prefix), 0),)
        progressed = any(a or b for a, b in counters)
        if progressed and first is None:
            first = (now, cpu, machine)
            threads_first = _thread_cpu_s(leader)
            services_first = {name: _group_cpu_s(pid) for name, pid in services.items()}
        if counters != previous:
            previous = counters
            if progressed:
                last_change = (now, cpu, machine)
                threads_last = _thread_cpu_s(leader)
                services_last = {name: _group_cpu_s(pid) for name, pid in services.items()}
        reached = max((max(a, b) for a, b in counters), default=0) >= variant.backlog
        if first:
            loads.append(os.getloadavg()[0])
        if first and now >= next_busy:
            next_busy = now + 2.0
            for vid in names:
                rows = _get(f"{rest}/jobs/{jid}/vertices/{vid}/subtasks/metrics"
                            "?get=busyTimeMsPerSecond,backPressuredTimeMsPerSecond")
                values = {r["id"]: float(r.get("avg", 0.0)) for r in rows}
                busy.setdefault(vid, []).append((values.get("busyTimeMsPerSecond", 0.0),
                                                 values.get("backPressuredTimeMsPerSecond", 0.0)))
        if last_change and reached and now - last_change[0] >= 6:
            done_reason = "drained"
            break
        time.sleep(1.0)
    result: dict[str, Any] = {"variant": variant.name, "description": variant.description,
                              "parallelism": spec.parallelism, "done": done_reason,
                              "configuration": variant.configuration, "args": list(variant.extra_args)}
    if first and last_change and last_change[0] > first[0]:
        seconds = last_change[0] - first[0]
        events = variant.backlog
        result["events"] = events
        result["events_per_s"] = round(events / seconds)
        result["seconds"] = round(seconds, 1)
        result["tm_cpu_ms_per_1k_events"] = round((last_change[1] - first[1]) / events * 1e6, 1)
        result["machine_cpu_ms_per_1k_events"] = round((last_change[2] - first[2]) / events * 1e6, 1)
        for name, value in services_last.items():
            result[f"{name}_cpu_ms_per_1k_events"] = round((value - services_first[name]) / events * 1e6, 1)
        deltas = {k: v - threads_first.get(k, 0.0) for k, v in threads_last.items()}
        result["tm_threads_ms_per_1k_events"] = {
            k: round(v / events * 1e6, 1) for k, v in sorted(deltas.items(), key=lambda kv: -kv[1])[:8]}
    result["load_average_during"] = round(sum(loads) / len(loads), 1) if loads else None
    result["vertices"] = [
        {"name": names[vid][:160],
         "busy_ms_per_s": round(sum(b for b, _ in samples[1:-1] or samples) / len(samples[1:-1] or samples)),
         "backpressured_ms_per_s": round(sum(p for _, p in samples[1:-1] or samples) / len(samples[1:-1] or samples))}
        for vid, samples in busy.items()
    ]
    return result


def offline_alert_ids(settings: Any, events: int = BACKLOG) -> set[str]:
    """What the detector must alert on the backlog: ``flink_app.evaluation`` over the same stream."""
    completed = subprocess.run(
        [str(settings.venv_python("flink")), "-m", "flink_app.evaluation", "--seed", str(SEED), "--events",
         str(events), "--fraud-rate", "0.02", "--alert-ids"],
        cwd=ROOT, check=True, capture_output=True, text=True)
    return set(json.loads(completed.stdout)["alert_ids"])


def flink_alert_ids(settings: Any, prefix: str, since: float) -> set[str]:
    import psycopg

    with psycopg.connect(settings.warehouse_dsn) as conn:
        rows = conn.execute("SELECT alert_id FROM bronze.raw_fraud_alerts WHERE alert_id LIKE %s "
                            "AND detected_at >= to_timestamp(%s)", (prefix + "%", since)).fetchall()
    return {str(r[0]) for r in rows}


def run_variants(names: list[str]) -> list[dict[str, Any]]:
    from streamflow.runtime import flink_local_config, flink_local_lifecycle
    from streamflow.settings import load_settings
    from streamflow.stack import supervisor
    from streamflow.topics import ensure_topics
    from streamflow.warehouse import apply_migrations

    settings = load_settings()
    started = supervisor.up(settings, ["postgres", "kafka"])
    apply_migrations(settings)
    ensure_topics(settings)
    by_name = {v.name: v for v in VARIANTS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {sorted(by_name)}")
    chosen = [by_name[n] for n in names] if names else list(VARIANTS)
    results = []
    try:
        for variant in chosen:
            topic = f"bench.stage.{variant.name}.{uuid.uuid4().hex[:6]}"
            run_settings = reading(settings, topic)
            if variant.legacy:
                run_settings = run_settings.model_copy(update={"repo_root": _legacy_root()})
            prefix = preload(settings, topic, variant.backlog)
            _clear_bronze(settings, prefix)
            spec = variant_spec(variant, settings, topic)
            load = os.getloadavg()[0]
            began = time.time()
            try:
                result = drain(variant, spec, run_settings, prefix)
                if variant.job == "fraud-detector" and not variant.module:
                    # the alerts this run upserted (detected_at >= its start) must be the offline scorer's
                    time.sleep(3)  # the JDBC sink flushes every second
                    expected = offline_alert_ids(settings, variant.backlog)
                    written = flink_alert_ids(settings, prefix, began)
                    result["alerts_written"] = len(written)
                    result["alerts_expected_offline"] = len(expected)
                    result["alerts_identical_to_offline"] = written == expected
            except Exception as error:  # one failed variant must not lose the others' figures
                result = {"variant": variant.name, "description": variant.description, "done": f"error: {error}"[:300],
                          "parallelism": spec.parallelism, "vertices": []}
            finally:
                flink_local_lifecycle.stop(spec, run_settings, reset_state=True)
                shutil.rmtree(flink_local_config.layout(spec, run_settings).root, ignore_errors=True)
                # a variant is outside the catalog: it ran on a cluster of its own (ADR 0013)
                shutil.rmtree(flink_local_config.layout(spec, run_settings).cluster_root, ignore_errors=True)
                _clear_bronze(settings, prefix)
            result["load_average_at_start"] = round(load, 1)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        if started:
            supervisor.down(settings, started)
    return results


def run() -> list[dict[str, Any]]:
    figures = []
    for r in run_variants([]):
        busiest = max(r["vertices"], key=lambda v: v["busy_ms_per_s"], default=None)
        notes = (f"{r['description']}; {r.get('events', BACKLOG)} events preloaded, p={r['parallelism']}, "
                 f"TM CPU {r.get('tm_cpu_ms_per_1k_events')} ms per 1k events, load average at start "
                 f"{r['load_average_at_start']}; busiest vertex: "
                 + (f"{busiest['name'][:80]} busy {busiest['busy_ms_per_s']} ms/s" if busiest else "n/a"))
        figures.append({"figure": f"{r['variant']} drain rate", "value": r.get("events_per_s"), "unit": "events/s",
                        "goal": "informational", "notes": notes})
    return figures


if __name__ == "__main__":
    run_variants(sys.argv[1:])
