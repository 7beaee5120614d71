"""What an operator reaches for, behind the ``streamflow`` CLI: one small module per part.

* :mod:`streamflow.ops.stack` — status (with consumer lag), service logs;
* :mod:`streamflow.ops.psql` — a psql shell on the warehouse with the generated credentials;
* :mod:`streamflow.ops.kafka` — topics, consumer lag per Flink job, tailing a topic;
* :mod:`streamflow.ops.flink` — the jobs' health, restart and cancel;
* :mod:`streamflow.ops.doctor` — every check at once, each problem with its fix;
* :mod:`streamflow.ops.bootstrap_view` — the live task table of ``streamflow bootstrap``.

Why a package apart from ``streamflow/cli.py``: the CLI only parses arguments and prints; the logic
here takes settings and returns data, so it is unit-tested without a terminal and reused by tests.
"""
