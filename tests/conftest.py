"""Fixtures for Google Cloud Storage tests: a real fake-gcs-server and a fault-injecting proxy.

No test here reaches real GCS or needs Google credentials: clients built with
``tests.gcs.emulator.client(url)`` use anonymous credentials and an explicit endpoint.

google-cloud-storage 3.x fetches bucket metadata in background threads
(``GET /storage/v1/b/<bucket>?projection=noAcl``) for its tracing attributes; such requests land
at unpredictable moments in FaultProxy's counters and draw from its seeded random faults. The
autouse ``_no_background_bucket_fetches`` fixture switches them off for every test
with the library's own switch, so counts and seeded faults are reproducible.
"""

from __future__ import annotations

import uuid

import pytest

from tests.gcs.emulator import Emulator, client
from tests.gcs.proxy import FaultProxy

BACKGROUND_FETCH_SWITCH = "DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA"


@pytest.fixture(scope="session", autouse=True)
def _no_background_bucket_fetches():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(BACKGROUND_FETCH_SWITCH, "true")
        yield


@pytest.fixture(scope="session")
def gcs_emulator():
    """One in-memory emulator for the whole session; buckets keep tests apart."""
    with Emulator(backend="memory") as emulator:
        yield emulator


@pytest.fixture
def gcs_bucket(gcs_emulator) -> str:
    """The name of a new, empty bucket on the session emulator."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    client(gcs_emulator.url).create_bucket(name)
    return name


@pytest.fixture
def fault_proxy(gcs_emulator):
    """A FaultProxy in front of the session emulator, with no faults armed."""
    with FaultProxy(gcs_emulator.url) as proxy:
        yield proxy


@pytest.fixture
def monkeypatched_emulator_env(gcs_emulator, monkeypatch) -> str:
    """Sets STORAGE_EMULATOR_HOST to the session emulator for this test; returns its URL."""
    for name, value in gcs_emulator.env().items():
        monkeypatch.setenv(name, value)
    return gcs_emulator.url


@pytest.fixture
def fresh_registry():
    """The architecture registry's cache emptied before and after the test (tests that register
    or resolve architectures of their own)."""
    from hpt_cli.architectures import get

    get.cache_clear()
    yield
    get.cache_clear()
