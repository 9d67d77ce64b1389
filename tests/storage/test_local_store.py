"""LocalRunStore: rows go to the file a reader finds, or the run stops (exit 4)."""

from __future__ import annotations

import shutil

import pytest

from hpt_cli.errors import ExitCode
from hpt_cli.storage.gcs import StorageError
from hpt_cli.storage.local import LocalRunStore

HEADER = ["trial_id", "status"]


@pytest.mark.parametrize("how", ["deleted", "moved", "replaced"])
def test_a_results_csv_moved_or_deleted_during_the_run_stops_it(tmp_path, how):
    store = LocalRunStore(tmp_path / "run")
    store.append_results(HEADER, ["a,ok\n"])
    if how == "deleted":
        shutil.rmtree(tmp_path / "run")
    elif how == "moved":
        (tmp_path / "run").rename(tmp_path / "elsewhere")
    else:
        (tmp_path / "new.csv").write_text("trial_id,status\n")
        (tmp_path / "new.csv").replace(tmp_path / "run" / "results.csv")  # another file at the path
    store.trial_dir("b")  # the runner makes the next trial's folder (and so the run folder) again
    with pytest.raises(StorageError) as caught:
        store.append_results(HEADER, ["b,ok\n"])
    assert caught.value.exit_code == ExitCode.STORAGE
    assert str(caught.value) == (f"{tmp_path}/run/results.csv was moved or deleted while the run wrote it; a run "
                                 f"folder must stay in place while hpt runs; run the same command again to go on "
                                 f"from what {tmp_path}/run holds now")


def test_rows_of_a_folder_left_in_place_go_on_after_a_reopen(tmp_path):
    store = LocalRunStore(tmp_path / "run")
    store.append_results(HEADER, ["a,ok\n"])
    store.close()
    again = LocalRunStore(tmp_path / "run")
    again.append_results(HEADER, ["b,ok\n"])
    assert (tmp_path / "run" / "results.csv").read_text() == "trial_id,status\na,ok\nb,ok\n"
