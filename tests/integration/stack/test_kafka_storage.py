"""The real ``kafka-storage format`` accepts every cluster id we make or keep, leading dash included."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from streamflow.settings import Settings
from streamflow.stack.kafka import KafkaService, new_cluster_id

pytestmark = pytest.mark.integration

# Ids whose first base64 character is '-' (top six bits 62): what an older version could have kept.
DASHED_IDS = st.binary(min_size=15, max_size=15).flatmap(
    lambda tail: st.integers(0xF8, 0xFB).map(
        lambda head: base64.urlsafe_b64encode(bytes([head]) + tail).decode().rstrip("=")))


def _format(settings: Settings, cluster_id: str) -> str:
    state = settings.state_dir / "kafka-format" / uuid.uuid4().hex[:8]
    service = KafkaService(settings.model_copy(update={"state_dir": state}))
    service.base.mkdir(parents=True)
    (service.base / "cluster.id").write_text(cluster_id)
    service.prepare()  # raises ServiceError with the tool's output when the format fails
    return (service.data_dir / "meta.properties").read_text()


@hyp_settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cluster_id=st.one_of(DASHED_IDS, st.builds(new_cluster_id)))
def test_storage_formats_with_any_cluster_id(settings: Settings, cluster_id: str) -> None:
    meta = _format(settings, cluster_id)
    assert f"cluster.id={cluster_id}" in meta.splitlines()


def test_an_id_with_a_leading_dash_formats(settings: Settings) -> None:
    cluster_id = base64.urlsafe_b64encode(bytes([0xF8]) + uuid.uuid4().bytes[:15]).decode().rstrip("=")
    assert cluster_id.startswith("-")
    assert f"cluster.id={cluster_id}" in _format(settings, cluster_id).splitlines()
