"""On a gs:// run, hpt's line in a trial's log.txt (why a trial that could not say so ended) is
written before the trial's files are handed to the uploader, so the bucket's log.txt has it."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest

from tests.gcs.emulator import client
from tests.helpers import HPT, subprocess_env, write_spec

pytestmark = pytest.mark.slow


def test_the_bucket_s_log_of_a_dead_worker_says_why(tmp_path, gcs_emulator, gcs_bucket):
    spec = write_spec(tmp_path, architecture="tests.note_archs:dies", parameters={"kind": ["exit7", "ok"]})
    spool = tmp_path / "spool"
    proc = subprocess.run([HPT, "run", str(spec), "-o", f"gs://{gcs_bucket}/sweeps", "-j", "2"],
                          env=subprocess_env(STORAGE_EMULATOR_HOST=gcs_emulator.url, HPT_SPOOL=str(spool)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    (folder,) = [p.parent for p in spool.rglob("results.csv")]
    rows = pd.read_csv(folder / "results.csv", keep_default_na=False).set_index("kind")
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    log = bucket.blob(f"sweeps/{folder.name}/trials/{rows.loc['exit7', 'trial_id']}/log.txt").download_as_bytes()
    assert log == b"half a line\nhpt: worker exited with code 7\n"
