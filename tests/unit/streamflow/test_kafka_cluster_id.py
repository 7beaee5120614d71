"""Every KRaft cluster id we make or keep reaches ``kafka-storage format`` as one value.

A CI run failed once because a random id began with ``-`` and the storage tool read it as an option.
The class is "any id": property tests over all 16-byte inputs (generation) and over ids with a leading
dash (kept by older versions) — the real tool runs in tests/integration/stack/test_kafka_storage.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from streamflow.stack.kafka import format_args, new_cluster_id


@given(st.binary(min_size=16, max_size=16))
def test_a_new_cluster_id_is_a_16_byte_uuid_that_never_looks_like_an_option(raw: bytes) -> None:
    cluster_id = new_cluster_id(raw)
    assert not cluster_id.startswith("-")
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    if not base64.urlsafe_b64encode(raw).decode().startswith("-"):
        assert base64.urlsafe_b64decode(cluster_id + "==") == raw  # the given bytes are used when they can be


def test_bytes_that_would_start_with_a_dash_are_replaced() -> None:
    raw = bytes([0xF8]) + bytes(15)  # top six bits 62 -> '-'
    assert base64.urlsafe_b64encode(raw).decode().startswith("-")
    assert not new_cluster_id(raw).startswith("-")


@given(st.from_regex(r"\A[-_A-Za-z0-9]{22}\Z"))
def test_any_kept_id_is_one_argument_with_its_option(cluster_id: str) -> None:
    args = format_args(cluster_id, Path("/state/kafka/server.properties"))
    assert f"--cluster-id={cluster_id}" in args
    assert cluster_id not in args  # never a bare token that could be parsed as an option
    assert "--config=/state/kafka/server.properties" in args


def test_the_broker_and_its_tools_keep_their_temp_files_under_the_state_dir(tmp_path: Path, monkeypatch) -> None:
    """The JVM unpacks native libraries (lz4) into java.io.tmpdir; a killed broker left them in /tmp."""
    from streamflow.settings import load_settings
    from streamflow.stack.kafka import KafkaService

    kafka = KafkaService(load_settings(state_dir=tmp_path / "state"))
    monkeypatch.setattr(KafkaService, "classpath", property(lambda self: "/jars/*"))
    for argv in (kafka._java("kafka.Kafka", "server.properties"), kafka._java("kafka.tools.StorageTool")):
        tmp = [a.split("=", 1)[1] for a in argv if a.startswith("-Djava.io.tmpdir=")]
        assert tmp == [str(kafka.tmp_dir)] and kafka.tmp_dir.is_relative_to(tmp_path / "state")
