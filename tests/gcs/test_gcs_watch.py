"""`hpt watch gs://...` on a prefix that holds no run says so at once, as for a local folder,
instead of waiting for a summary.json that never comes."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from tests.gcs.emulator import client

pytestmark = pytest.mark.slow


def _missing(uri: str) -> str:
    return f"error: {uri}: no such run folder; give the folder `hpt run` printed (<output>/<run-id>)\n"


@pytest.fixture
def bucket_with_a_run(gcs_bucket, monkeypatched_emulator_env) -> str:
    """A bucket holding sweeps/demo-1234/, a run folder that has its spec.json and results.csv."""
    bucket = client(monkeypatched_emulator_env).bucket(gcs_bucket)
    bucket.blob("sweeps/demo-1234/spec.json").upload_from_string('{"architecture": "ridge"}')
    bucket.blob("sweeps/demo-1234/results.csv").upload_from_string("trial_id,status\n")
    return gcs_bucket


@pytest.mark.parametrize("path", ["sweeps/demo-123", "sweeps/demo-12345", "sweeps", "nope/demo-1234"],
                         ids=["a-character-short", "a-character-long", "the-output-prefix", "another-prefix"])
def test_a_prefix_with_no_run_is_one_line_at_once(bucket_with_a_run, path):
    uri = f"gs://{bucket_with_a_run}/{path}"
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["watch", uri])  # no --timeout: it must not wait at all
    assert result.exit_code == 2
    assert result.output == _missing(uri)
    assert time.monotonic() - started < 10


def test_a_run_folder_is_followed(bucket_with_a_run):
    uri = f"gs://{bucket_with_a_run}/sweeps/demo-1234"
    result = CliRunner().invoke(cli, ["watch", uri, "--interval", "0.1", "--timeout", "0.3"])
    assert result.exit_code == 2
    assert result.stdout == f"watching {uri}\n[0/1] 0 ok, 0 failed\n"  # the spec: one trial
    assert result.stderr == (f"error: {uri}: no summary.json after 0.3 s; the run is still going (or was killed); "
                             "run `hpt watch` again\n")


def test_a_run_that_only_holds_its_lock_so_far_is_followed(gcs_bucket, monkeypatched_emulator_env):
    """`hpt run` takes the `.lock` object before it uploads spec.json: a watcher started at once."""
    client(monkeypatched_emulator_env).bucket(gcs_bucket).blob("sweeps/new-1/.lock").upload_from_string("{}")
    uri = f"gs://{gcs_bucket}/sweeps/new-1"
    result = CliRunner().invoke(cli, ["watch", uri, "--interval", "0.1", "--timeout", "0.2"])
    assert result.exit_code == 2
    assert result.stdout == f"watching {uri}\n"
    assert "no summary.json after 0.2 s" in result.stderr


# -- outages: hpt's own timeouts and retries, never the library's two-minute RetryError -------------

def test_a_read_during_an_outage_is_retried_for_its_patience_then_exit_4(bucket_with_a_run, fault_proxy):
    from hpt_cli.storage.gcs import StorageError
    from hpt_cli.watch import GcsSource

    uri = f"gs://{bucket_with_a_run}/sweeps/demo-1234"
    now, slept = [0.0], []

    def sleep(seconds):  # the retries' waits pass on a clock of their own
        slept.append(seconds)
        now[0] += seconds

    source = GcsSource(uri, client=client(fault_proxy.url), patience=2.0, sleep=sleep, clock=lambda: now[0])
    assert source.read("spec.json") == b'{"architecture": "ridge"}'
    fault_proxy.down = True
    with pytest.raises(StorageError) as caught:
        source.read("results.csv")
    assert str(caught.value).startswith(f"{uri} does not answer (")
    assert caught.value.exit_code == 4 and len(slept) >= 2 and sum(slept) == pytest.approx(2.0)
    watching = GcsSource(uri, client=client(fault_proxy.url), patience=0)
    with pytest.raises(Exception) as raw:  # as it is, for hpt watch's own loop
        watching.read("results.csv")
    assert type(raw.value).__name__ != "RetryError"


def test_watch_of_a_bucket_that_is_down_says_so_and_honours_its_timeout(bucket_with_a_run, fault_proxy,
                                                                        monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fault_proxy.url)
    uri = f"gs://{bucket_with_a_run}/sweeps/demo-1234"
    fault_proxy.down = True
    result = CliRunner().invoke(cli, ["watch", uri, "--interval", "0.1", "--timeout", "0.5"])
    assert result.exit_code == 2, result.output
    assert result.stdout.startswith(f"watching {uri}\nstorage not answering (")
    assert "no summary.json after 0.5 s" in result.stderr
