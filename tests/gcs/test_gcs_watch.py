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
