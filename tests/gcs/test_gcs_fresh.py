"""`--fresh` into gs://: a run id whose folder the bucket already holds is not reused, also from
another machine (another spool)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from hpt_cli.runner import RunOptions, run_spec
from hpt_cli.runner.run_id import folder_holds_a_run, run_id
from hpt_cli.spec import parse_spec
from hpt_cli.storage import open_lock
from tests.gcs.emulator import client

pytestmark = pytest.mark.slow
NOW = datetime(2026, 11, 22, 9, 30, 0)


def _spec():
    return parse_spec(json.dumps({"name": "gfresh", "architecture": "branin", "parameters": {"x1": [1.0], "x2": 1.0}}))


def test_fresh_runs_in_the_same_second_from_two_machines_get_two_folders(tmp_path, gcs_bucket,
                                                                        monkeypatched_emulator_env):
    output = f"gs://{gcs_bucket}/sweeps"
    stamped = run_id(_spec(), fresh_at=NOW)
    ids = []
    for machine in ("a", "b"):  # each its own spool: only the bucket knows of the other's run
        result = run_spec(_spec(), RunOptions(output=output, fresh=True, workers=1, spool=tmp_path / machine),
                          now=NOW)
        assert result.exit_code == 0, result.storage_error
        ids.append(result.run_id)
    assert ids == [stamped, f"{stamped}-2"]
    bucket = client(monkeypatched_emulator_env).bucket(gcs_bucket)
    for rid in ids:
        summary = json.loads(bucket.blob(f"sweeps/{rid}/summary.json").download_as_bytes())
        assert summary["counts"]["ok"] == 1 and summary["counts"]["skipped"] == 0


def test_an_empty_folder_of_the_bucket_is_free(tmp_path, gcs_bucket, monkeypatched_emulator_env):
    lock = open_lock(f"gs://{gcs_bucket}/s", "r-1", tmp_path / "spool")
    assert lock.try_acquire() is None
    try:
        assert not folder_holds_a_run(lock)  # its own .lock object and spool lock file only
        client(monkeypatched_emulator_env).bucket(gcs_bucket).blob("s/r-1/spec.json").upload_from_string("{}")
        assert folder_holds_a_run(lock)
    finally:
        lock.release()
