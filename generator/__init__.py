"""StreamFlow's synthetic card-transaction generator (with labelled fraud) for Kafka.

Entry point: ``python -m generator``; the event contract is ``generator/schema/transaction.v1.schema.json``
and the fraud-pattern definitions are in :mod:`generator.pattern_rules` (see generator/README.md).
"""

from pathlib import Path

__version__ = "0.1.0"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "transaction.v1.schema.json"
