"""A stop request (SIGINT/SIGTERM) while gs:// does not answer, the records of a run that exits 4,
`hpt sync` of an obsolete spool, and a spool that cannot be written. Against the emulator, with
faults from the proxy; nothing here touches real GCS."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.storage.gcs import GcsLocation
from hpt_cli.storage.mirror import Mirror, Uploader
from tests.gcs.emulator import client
from tests.helpers import HPT, subprocess_env, write_spec

LONG = 60.0  # the upload timeout these tests must NOT wait for


def spool_with_rows(folder: Path, location: GcsLocation, rows: bytes = b"trial_id,status\na,ok\n") -> Path:
    """A spool as a run leaves it (rows, spec.json, its target)."""
    folder.mkdir(parents=True)
    (folder / "results.csv").write_bytes(rows)
    (folder / "spec.json").write_text("{}")
    Mirror.write_target(folder, location)
    return folder


# -- Uploader.close and the stop request -----------------------------------------------------------

def test_a_stop_request_ends_the_final_retries_while_storage_is_down(tmp_path, gcs_bucket, fault_proxy):
    location = GcsLocation(gcs_bucket, "run")
    spool = spool_with_rows(tmp_path / "spool", location)
    uploader = Uploader(Mirror(spool, location, client(fault_proxy.url)), interval=3600)
    fault_proxy.down = True
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()  # SIGTERM arrives while close() retries
    started = time.monotonic()
    assert uploader.close(LONG, stop=stop) is False
    took = time.monotonic() - started
    print(f"close() returned {took:.2f} s after it began (stop set at 0.3 s)")
    assert took < 5, took  # not the 60 s upload timeout
    assert uploader.stopped and uploader.last_error and "no answer" in uploader.last_error


def test_a_stop_request_abandons_a_request_that_hangs(tmp_path, gcs_bucket):
    hole = socket.socket()  # accepts connections (the backlog) and never answers
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        url = f"http://127.0.0.1:{hole.getsockname()[1]}"
        location = GcsLocation(gcs_bucket, "run")
        spool = spool_with_rows(tmp_path / "spool", location)
        mirror = Mirror(spool, location, client(url))  # read timeout: 30 s
        uploader = Uploader(mirror, interval=3600)
        stop = threading.Event()
        stop.set()  # stopped before the end of the run
        started = time.monotonic()
        assert uploader.close(LONG, stop=stop) is False
        took = time.monotonic() - started
        print(f"close() abandoned the hanging request after {took:.2f} s")
        assert took < 5, took
        assert uploader.stopped and mirror.cancelled
    finally:
        hole.close()


def test_a_reachable_bucket_still_gets_everything_after_a_stop_request(tmp_path, gcs_emulator, gcs_bucket):
    location = GcsLocation(gcs_bucket, "run")
    spool = spool_with_rows(tmp_path / "spool", location)
    (spool / "summary.json").write_text('{"status": "interrupted"}')
    uploader = Uploader(Mirror(spool, location, client(gcs_emulator.url)), interval=3600)
    stop = threading.Event()
    stop.set()
    assert uploader.close(LONG, stop=stop) is True
    assert not uploader.stopped
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    assert bucket.blob("run/results.csv").download_as_bytes() == b"trial_id,status\na,ok\n"
    assert bucket.get_blob("run/summary.json") is not None


# -- hpt run: a signal while the bucket does not answer ----------------------------------------------

def wait_for(predicate, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def run_folder(spool_root: Path) -> Path | None:
    found = [p.parent for p in spool_root.rglob("results.csv")]
    return found[0] if found else None


def rows_in(folder: Path | None) -> int:
    try:
        return (folder / "results.csv").read_text().count("\n") - 1
    except (OSError, TypeError):
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("when", ["trials", "final-upload"])
def test_a_signal_with_storage_down_exits_4_at_once_and_every_record_says_4(
        tmp_path, gcs_emulator, gcs_bucket, fault_proxy, when):
    spec = write_spec(tmp_path, name="stopdown", architecture="tests.archs:fault",
                      parameters={"kind": "sleep", "seconds": 0.3, "value": list(range(16 if when == "trials" else 4))})
    spool_root = tmp_path / "spool"
    env = subprocess_env(STORAGE_EMULATOR_HOST=fault_proxy.url, HPT_SPOOL=str(spool_root))
    reports = tmp_path / "reports"
    sig = signal.SIGTERM if when == "trials" else signal.SIGINT
    proc = subprocess.Popen(
        [HPT, "run", str(spec), "-o", f"gs://{gcs_bucket}/s", "-j", "2", "-q", "--upload-interval", "0.2",
         "--upload-timeout", str(int(LONG)), "--summary-json", str(reports / "summary.json"),
         "--events", str(reports / "events.jsonl")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: rows_in(run_folder(spool_root)) >= 2, what="two rows in the spool")
        fault_proxy.down = True  # the bucket stops answering
        folder = run_folder(spool_root)
        if when == "final-upload":  # every trial done: the run is in its final upload's retries
            wait_for(lambda: (folder / "summary.json").exists(), what="the run's end")
            time.sleep(0.5)
        proc.send_signal(sig)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=LONG)
        took = time.monotonic() - sent
        print(f"{when}: exit {proc.returncode} {took:.2f} s after {sig.name}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, err
    assert took < 15, took  # within a second or two here; far below --upload-timeout either way
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: gs://{gcs_bucket}/s/{folder.name} ")
    assert last.endswith(f"kept in the spool {folder}; upload them with: hpt sync {folder}"), last
    again = "send SIGTERM again" if sig == signal.SIGTERM else "Ctrl-C again"
    assert f"{sig.name}: stopping; finished trials are kept ({again} to quit at once)" in err

    # every record of the run says what the process said: exit 4, upload pending
    spooled = json.loads((folder / "summary.json").read_text())
    reported = json.loads((reports / "summary.json").read_text())
    events = [json.loads(line) for line in (reports / "events.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "run_finished"]
    assert len(finished) == 1 and finished[0]["summary"] == reported == spooled
    assert spooled["exit_code"] == 4 and spooled["status"] == "upload_pending"
    assert spooled["run_status"] == ("interrupted" if when == "trials" else "complete")
    assert spooled["storage_error"] == last[len("error: "):]

    # storage back: hpt sync uploads it all, summary.json last, with the run's own status and exit
    # code back in it; hpt watch then reports how the run went
    fault_proxy.down = False
    sync = subprocess.run([HPT, "sync", str(folder), "--timeout", "30"], env=env, capture_output=True,
                          text=True, timeout=LONG)
    assert sync.returncode == 0, sync.stderr
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    remote = json.loads(bucket.blob(f"s/{folder.name}/summary.json").download_as_bytes())
    assert remote == json.loads((folder / "summary.json").read_text())
    own = {k: v for k, v in spooled.items() if k not in ("run_status", "run_exit_code", "storage_error")}
    assert remote == {**own, "status": spooled["run_status"], "exit_code": spooled["run_exit_code"],
                      "synced_at": remote["synced_at"]}
    assert bucket.blob(f"s/{folder.name}/results.csv").download_as_bytes() == (folder / "results.csv").read_bytes()
    assert bucket.get_blob(f"s/{folder.name}/.lock") is None  # left by the run (bucket down), its process gone
    watch = subprocess.run([HPT, "watch", f"gs://{gcs_bucket}/s/{folder.name}", "--interval", "0.1",
                            "--timeout", "30"], env=env, capture_output=True, text=True, timeout=LONG)
    assert watch.returncode == (3 if when == "trials" else 0), watch.stdout + watch.stderr


@pytest.mark.slow
def test_a_run_that_exits_4_without_a_signal_says_4_in_every_record(tmp_path, gcs_bucket, fault_proxy):
    spec = write_spec(tmp_path, name="alldown", architecture="tests.archs:fault",
                      parameters={"kind": "ok", "value": [1, 2, 3]})
    spool_root, reports = tmp_path / "spool", tmp_path / "reports"
    fault_proxy.down = True  # from the start: the run goes to the spool, then gives up after 1 s
    result = subprocess.run(
        [HPT, "run", str(spec), "-o", f"gs://{gcs_bucket}/d", "-j", "2", "-q", "--upload-timeout", "1",
         "--summary-json", str(reports / "summary.json"), "--junit", str(reports / "junit.xml")],
        env=subprocess_env(STORAGE_EMULATOR_HOST=fault_proxy.url, HPT_SPOOL=str(spool_root)),
        capture_output=True, text=True, timeout=LONG)
    assert result.returncode == 4, result.stderr
    folder = run_folder(spool_root)
    assert result.stderr.strip().splitlines()[-1].endswith(f"upload them with: hpt sync {folder}")
    spooled = json.loads((folder / "summary.json").read_text())
    assert spooled == json.loads((reports / "summary.json").read_text())
    assert (spooled["status"], spooled["exit_code"], spooled["run_status"]) == ("upload_pending", 4, "complete")
    bucket_checks = [r for r in fault_proxy.requests if r[:2] == ("GET", f"/storage/v1/b/{gcs_bucket}")
                     or r[1].startswith(f"/storage/v1/b/{gcs_bucket}?")]
    assert bucket_checks == []  # the lock found the bucket silent: the store does not wait for it again
    junit = (reports / "junit.xml").read_text()
    assert '<property name="exit_code" value="4"' in junit and 'value="upload_pending"' in junit


# -- hpt sync of a spool the bucket has moved past -----------------------------------------------------

def test_sync_of_an_obsolete_spool_says_so_and_exits_2(tmp_path, gcs_emulator, gcs_bucket, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    location = GcsLocation(gcs_bucket, "c1/run-1")
    header = b"trial_id,status\n"
    machine_b = spool_with_rows(tmp_path / "b", location, header + b"x,ok\ny,ok\n")  # finished the run
    assert Mirror(machine_b, location, client(gcs_emulator.url)).push_all()
    machine_a = spool_with_rows(tmp_path / "a", location, header + b"x,failed\n")  # exited 4 earlier

    result = CliRunner().invoke(cli, ["sync", str(machine_a), "--timeout", str(LONG)])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and "unreachable" not in line and "again" not in line
    assert line.startswith(f"error: {location}/results.csv is not the spool's (")
    assert line.endswith(f"the bucket holds every trial of the spool {machine_a} and 1 more, written from "
                         f"elsewhere, so the spool is obsolete and nothing was uploaded; discard it with: "
                         f"rm -r {machine_a}")
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    assert bucket.blob("c1/run-1/results.csv").download_as_bytes() == header + b"x,ok\ny,ok\n"


def test_sync_of_a_spool_with_trials_the_bucket_lacks_says_keep_it(tmp_path, gcs_emulator, gcs_bucket, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    location = GcsLocation(gcs_bucket, "c2/run-1")
    header = b"trial_id,status\n"
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    bucket.blob("c2/run-1/results.csv").upload_from_string(header + b"x,ok\nx,ok\n")  # a duplicated row
    spool = spool_with_rows(tmp_path / "a", location, header + b"x,ok\ny,ok\nz,ok\n")
    result = CliRunner().invoke(cli, ["sync", str(spool), "--timeout", str(LONG)])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.endswith(f"the spool {spool} holds 2 trials the bucket lacks; nothing was uploaded; keep the "
                         f"spool; to make the bucket's copy the spool's: gcloud storage cp {spool}/results.csv "
                         f"{location}/results.csv && hpt sync {spool}"), line


# -- a spool that cannot be written ----------------------------------------------------------------

@pytest.mark.parametrize("how", ["--spool", "default"])
def test_an_unwritable_spool_is_named_with_its_fix(tmp_path, gcs_emulator, gcs_bucket, monkeypatch, how):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.delenv("HPT_SPOOL", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")  # anything below it cannot be created, also as root
    args = []
    if how == "--spool":
        args = ["--spool", str(blocker / "spool")]
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    spec = write_spec(tmp_path, name="ro", architecture="tests.archs:fault", parameters={"kind": "ok"})
    result = CliRunner().invoke(cli, ["run", str(spec), "-o", f"gs://{gcs_bucket}/ro", "-q", *args])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    root = blocker / "spool" if how == "--spool" else blocker / "cache" / "hpt" / "spool"
    assert line.startswith(f"error: {root / gcs_bucket / 'ro'}/ro-"), line
    assert f"cannot create the local spool of gs://{gcs_bucket}/ro/ro-" in line
    assert line.endswith("(Not a directory); give --spool DIR (or set HPT_SPOOL) to a folder you can write")
    assert "--output" not in line
