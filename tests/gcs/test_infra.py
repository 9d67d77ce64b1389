"""Tests of the GCS test infrastructure itself, driven by the real google-cloud-storage client.

Deviations of fake-gcs-server (the vendored build) from real GCS, observed with these tests and by
hand; storage code tested against the emulator must not rely on real GCS behaviour here:

- Preconditions are enforced ONLY on uploads (media, multipart and resumable):
  ``if_generation_match=0`` on an existing object and a wrong generation give 412. They are
  IGNORED by compose (``if_generation_match`` and ``if_source_generation_match``), copy/rewrite,
  delete, download, reload (metadata GET) and patch: the call succeeds, e.g. a delete with a wrong
  ``if_generation_match`` deletes the object.
- Compose onto an existing destination replaces its content but KEEPS its generation (an upload
  onto an existing object gets a new generation). Do not detect "my compose happened" by a
  generation change; compare size/crc32c/content.
- Composed objects have a correct crc32c (of the concatenated bytes) and an md5Hash;
  ``componentCount`` is not reported (None).
- A download by an explicit wrong ``generation`` gives 404, as real GCS does.
- Resumable uploads work, in one PUT or in chunks with Content-Range. The session URL in the
  Location header is absolute (the ``-external-url``); FaultProxy rewrites it, and also rewrites
  ``selfLink``/``mediaLink`` in JSON bodies: the client downloads from ``mediaLink`` once it has
  the object's metadata (``bucket.get_blob``), which would otherwise bypass the proxy.
- Bucket names are validated (a 1-character name gives 400 "invalid bucket name").
- Metadata patch leaves ``metageneration`` unreported (None) in the response.
"""

from __future__ import annotations

import base64
import os
import socket
import time

import google_crc32c
import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.cloud.storage.retry import DEFAULT_RETRY

from tests.gcs.emulator import Emulator, client
from tests.gcs.proxy import DROPPED, FaultProxy

FAST_RETRY = DEFAULT_RETRY.with_delay(initial=0.01, maximum=0.05).with_timeout(20)
TIMEOUT = 10


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def test_basic_operations_go_through_the_proxy(fault_proxy, gcs_bucket):
    bucket = client(fault_proxy.url).bucket(gcs_bucket)
    bucket.blob("a").upload_from_string(b"hello ", timeout=TIMEOUT)
    bucket.blob("b").upload_from_string(b"world", timeout=TIMEOUT)

    assert bucket.blob("a").download_as_bytes(timeout=TIMEOUT) == b"hello "
    assert bucket.blob("b").download_as_bytes(start=2, timeout=TIMEOUT) == b"rld"
    assert bucket.blob("b").download_as_bytes(start=1, end=2, timeout=TIMEOUT) == b"or"

    target = bucket.blob("ab")
    target.compose([bucket.blob("a"), bucket.blob("b")], timeout=TIMEOUT)
    composed = bucket.get_blob("ab", timeout=TIMEOUT)
    assert composed.size == 11
    assert composed.crc32c == crc32c_b64(b"hello world")
    assert fault_proxy.url in composed.media_link  # rewritten, so downloads stay on the proxy

    fault_proxy.reset_counters()
    assert composed.download_as_bytes(timeout=TIMEOUT) == b"hello world"
    assert [(m, s) for m, _, s in fault_proxy.requests] == [("GET", 200)]

    bucket.blob("a").delete(timeout=TIMEOUT)
    assert not bucket.blob("a").exists(timeout=TIMEOUT)
    assert sorted(b.name for b in bucket.list_blobs(timeout=TIMEOUT)) == ["ab", "b"]
    statuses = {s for _, _, s in fault_proxy.requests}
    assert statuses <= {200, 204, 404}


@pytest.mark.parametrize("chunk_size", [None, 1024 * 1024])
def test_resumable_upload_of_9_mib_stays_on_the_proxy(fault_proxy, gcs_bucket, tmp_path, chunk_size):
    data = os.urandom(9 * 1024 * 1024 + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    bucket = client(fault_proxy.url).bucket(gcs_bucket)

    bucket.blob("big", chunk_size=chunk_size).upload_from_filename(str(path), timeout=TIMEOUT)

    puts = [p for m, p, s in fault_proxy.requests if m == "PUT" and s in (200, 308)]
    starts = [p for m, p, _ in fault_proxy.requests if m == "POST" and "uploadType=resumable" in p]
    assert len(starts) == 1
    assert len(puts) == (1 if chunk_size is None else 10)
    assert all("upload_id=" in p for p in puts)
    assert fault_proxy.bytes_uploaded(lambda m, p: m == "PUT") == len(data)
    assert bucket.blob("big").download_as_bytes(timeout=TIMEOUT) == data


def test_downloads_survive_injected_503_with_the_default_retry_policy(fault_proxy, gcs_bucket):
    bucket = client(fault_proxy.url).bucket(gcs_bucket)
    bucket.blob("x").upload_from_string(b"payload", timeout=TIMEOUT)
    fault_proxy.reset_counters()
    fault_proxy.fail_modes = {"503"}
    fault_proxy.fail_rate = 0.3

    for _ in range(20):
        assert bucket.blob("x").download_as_bytes(retry=FAST_RETRY, timeout=TIMEOUT) == b"payload"

    statuses = [s for _, _, s in fault_proxy.requests]
    assert statuses.count(200) == 20
    assert statuses.count(503) > 0
    assert set(statuses) == {200, 503}


def test_all_fail_modes_are_retried_for_idempotent_reads(fault_proxy, gcs_bucket):
    bucket = client(fault_proxy.url).bucket(gcs_bucket)
    bucket.blob("x").upload_from_string(b"payload", timeout=TIMEOUT)
    fault_proxy.reset_counters()
    fault_proxy.fail_rate = 0.5  # all modes: 503, 429, drop

    for _ in range(20):
        assert bucket.get_blob("x", retry=FAST_RETRY, timeout=TIMEOUT).size == 7
        assert bucket.blob("x").download_as_bytes(retry=FAST_RETRY, timeout=TIMEOUT) == b"payload"

    assert {s for _, _, s in fault_proxy.requests} == {200, 429, 503, DROPPED}


def test_lost_compose_response_still_takes_effect(fault_proxy, gcs_bucket):
    bucket = client(fault_proxy.url).bucket(gcs_bucket)
    bucket.blob("a").upload_from_string(b"12345", timeout=TIMEOUT)
    bucket.blob("b").upload_from_string(b"678", timeout=TIMEOUT)
    fault_proxy.drop_response_once(lambda m, p: m == "POST" and "/compose" in p)

    with pytest.raises(requests.exceptions.ConnectionError):
        bucket.blob("ab").compose([bucket.blob("a"), bucket.blob("b")], retry=None, timeout=TIMEOUT)

    assert bucket.get_blob("ab", timeout=TIMEOUT).size == 8
    composes = [s for m, p, s in fault_proxy.requests if "/compose" in p]
    assert composes == [DROPPED]
    # disarmed after firing
    bucket.blob("ab").compose([bucket.blob("a"), bucket.blob("b")], retry=None, timeout=TIMEOUT)
    assert [s for m, p, s in fault_proxy.requests if "/compose" in p] == [DROPPED, 200]


def test_down_fails_fast_and_recovers(fault_proxy, gcs_bucket):
    bucket = client(fault_proxy.url).bucket(gcs_bucket)
    bucket.blob("x").upload_from_string(b"1", timeout=TIMEOUT)
    fault_proxy.down = True

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        bucket.blob("x").reload(retry=None, timeout=2)
    with pytest.raises(requests.exceptions.ConnectionError):
        bucket.blob("y").upload_from_string(b"2", retry=None, timeout=2)
    assert time.monotonic() - started < 5
    assert {s for _, _, s in fault_proxy.requests[-2:]} == {DROPPED}

    fault_proxy.down = False
    assert bucket.blob("x").download_as_bytes(timeout=TIMEOUT) == b"1"


def test_bytes_uploaded_counts_request_bodies(fault_proxy, gcs_bucket):
    bucket = client(fault_proxy.url).bucket(gcs_bucket)
    bucket.blob("k").upload_from_string(os.urandom(1000), timeout=TIMEOUT)
    assert fault_proxy.bytes_uploaded(lambda m, p: "upload" in p) >= 1000
    assert fault_proxy.bytes_uploaded(lambda m, p: "download" in p) == 0
    fault_proxy.reset_counters()
    assert fault_proxy.bytes_uploaded() == 0
    assert fault_proxy.requests == []


def test_chunked_request_body_and_head_are_forwarded(fault_proxy, gcs_bucket):
    url = f"{fault_proxy.url}/upload/storage/v1/b/{gcs_bucket}/o?uploadType=media&name=chunked"
    response = requests.post(url, data=iter([b"abc", b"defg"]), timeout=TIMEOUT)  # chunked encoding
    assert response.status_code == 200
    assert fault_proxy.bytes_uploaded(lambda m, p: "name=chunked" in p) == 7

    media = f"{fault_proxy.url}/download/storage/v1/b/{gcs_bucket}/o/chunked?alt=media"
    head = requests.head(media, timeout=TIMEOUT)
    assert head.status_code == 200 and head.headers["Content-Length"] == "7"
    with requests.Session() as session:  # keep-alive: several requests on one connection
        for _ in range(3):
            ranged = session.get(media, headers={"Range": "bytes=2-4"}, timeout=TIMEOUT)
            assert ranged.status_code == 206 and ranged.content == b"cde"


def test_preconditions_are_enforced_on_uploads_only(gcs_emulator, gcs_bucket):
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    bucket.blob("a").upload_from_string(b"1", if_generation_match=0, timeout=TIMEOUT)
    with pytest.raises(api_exceptions.PreconditionFailed):
        bucket.blob("a").upload_from_string(b"2", if_generation_match=0, timeout=TIMEOUT)
    # documented deviation: compose ignores the destination precondition...
    bucket.blob("c").compose([bucket.blob("a")], if_generation_match=12345, timeout=TIMEOUT)
    generation = bucket.get_blob("c", timeout=TIMEOUT).generation
    # ...and keeps the destination's generation when it replaces its content
    bucket.blob("c").compose([bucket.blob("a"), bucket.blob("a")], timeout=TIMEOUT)
    again = bucket.get_blob("c", timeout=TIMEOUT)
    assert (again.size, again.generation) == (2, generation)


def test_filesystem_backend_keeps_data_across_restart(tmp_path):
    with Emulator(backend="filesystem", root=tmp_path / "data") as emulator:
        port = emulator.port
        bucket = client(emulator.url).create_bucket("persist")
        bucket.blob("x").upload_from_string(b"kept", timeout=TIMEOUT)
        emulator.restart()
        assert emulator.port == port
        assert client(emulator.url).bucket("persist").blob("x").download_as_bytes(timeout=TIMEOUT) == b"kept"
    assert not emulator.running
    emulator.stop()  # idempotent


def test_start_failure_raises_with_the_log(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        emulator = Emulator(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="did not become healthy"):
            emulator.start()
        emulator.cleanup()


def test_env_points_the_default_client_at_the_emulator(monkeypatched_emulator_env, gcs_bucket):
    from google.cloud import storage

    default_client = storage.Client()  # reads STORAGE_EMULATOR_HOST at construction; anonymous
    default_client.bucket(gcs_bucket).blob("e").upload_from_string(b"env", timeout=TIMEOUT)
    assert client(monkeypatched_emulator_env).bucket(gcs_bucket).blob("e").download_as_bytes() == b"env"


def test_proxy_stop_is_clean_and_idempotent(gcs_emulator):
    proxy = FaultProxy(gcs_emulator.url).start()
    session = requests.Session()
    assert session.get(f"{proxy.url}/_internal/healthcheck", timeout=TIMEOUT).status_code == 200
    proxy.stop()
    proxy.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{proxy.url}/_internal/healthcheck", timeout=2)
    session.close()
