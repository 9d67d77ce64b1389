"""The mirror never puts rows at the wrong offset of a results.csv someone else wrote, leaves no
part a late compose could use, survives a torn uploaded.log, and keeps rows going up while a
backlog of files does. Against the emulator where a bucket is needed; nothing touches real GCS."""

from __future__ import annotations

import threading

import pytest

from hpt_cli.storage.gcs import Diverged, GcsLocation
from hpt_cli.storage.mirror import PARTS, STATE_DIR, UPLOADED_LOG, Mirror, Uploader
from tests.gcs.emulator import client

HEADER = b"trial_id,status\n"


def spool_with(tmp_path, rows: bytes):
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    (spool / "results.csv").write_bytes(HEADER + rows)
    return spool


def append(spool, rows: bytes) -> None:
    with open(spool / "results.csv", "ab") as fh:
        fh.write(rows)


def test_rows_written_by_another_runner_stop_the_uploads_instead_of_landing_at_a_wrong_offset(
        tmp_path, gcs_emulator, gcs_bucket):
    location = GcsLocation(gcs_bucket, "run")
    spool = spool_with(tmp_path, b"a,ok\n")
    mirror = Mirror(spool, location, client(gcs_emulator.url))
    assert mirror.push_results()
    # another runner took the run over: it pulled the bucket's rows and appended its own
    other = client(gcs_emulator.url).bucket(gcs_bucket).blob("run/results.csv")
    other.upload_from_string(HEADER + b"a,ok\nb,ok\n")
    append(spool, b"c,ok\nd,ok\n")  # this runner's next rows: the bucket is shorter than the spool
    with pytest.raises(Diverged, match="is not a prefix of the spool's copy"):
        mirror.push_results()
    assert other.download_as_bytes() == HEADER + b"a,ok\nb,ok\n"  # nothing appended at the wrong place


def test_a_bucket_copy_rewritten_with_the_same_bytes_is_still_the_spools_prefix(tmp_path, gcs_emulator, gcs_bucket):
    location = GcsLocation(gcs_bucket, "same")
    spool = spool_with(tmp_path, b"a,ok\n")
    mirror = Mirror(spool, location, client(gcs_emulator.url))
    assert mirror.push_results()
    client(gcs_emulator.url).bucket(gcs_bucket).blob("same/results.csv").upload_from_string(HEADER + b"a,ok\n")
    append(spool, b"b,ok\n")
    assert mirror.push_results()  # a new generation, checked once, and appended to
    assert client(gcs_emulator.url).bucket(gcs_bucket).blob("same/results.csv").download_as_bytes() == \
        HEADER + b"a,ok\nb,ok\n"


def test_every_append_leaves_no_part_behind(tmp_path, gcs_emulator, gcs_bucket):
    location = GcsLocation(gcs_bucket, "parts")
    spool = spool_with(tmp_path, b"a,ok\n")
    mirror = Mirror(spool, location, client(gcs_emulator.url))
    for row in (b"b,ok\n", b"c,ok\n", b""):
        append(spool, row)
        assert mirror.push_results()
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    bucket.blob(f"parts/{PARTS}/results-000000000016-5-deadbeef.csv").upload_from_string(b"x,ok\n")  # left over
    mirror.clean_parts()  # this mirror's own leftovers only: another process may be composing that one
    assert len(list(bucket.list_blobs(prefix=f"parts/{PARTS}/"))) == 1
    mirror.clean_parts(older_than=0)  # hpt sync's: parts old enough that no upload composes them
    assert [b.name for b in bucket.list_blobs(prefix="parts/")] == ["parts/results.csv"]


def test_a_torn_line_of_uploaded_log_means_that_file_goes_up_again(tmp_path):
    spool = spool_with(tmp_path, b"a,ok\n")
    (spool / STATE_DIR).mkdir()
    (spool / STATE_DIR / UPLOADED_LOG).write_text("12 170 spec.json\n12 17")  # cut short by a full disk

    class NoBucket:
        def bucket(self, name):
            return None

    mirror = Mirror(spool, GcsLocation("b", "run"), NoBucket())
    assert mirror._uploaded == {"spec.json": (12, 170)}


class BacklogMirror:
    """A mirror whose files each take one second of a fake clock to upload."""

    def __init__(self, files: int):
        self.now = 0.0
        self.calls: list[str] = []
        self.files = [f"trials/t{i}/model.bin" for i in range(files)]
        self.progress = 0
        self.cancelled = False

    def push_results(self) -> bool:
        self.calls.append("rows")
        return True

    def pending(self, names=None):
        return [f for f in self.files if f not in self.calls]

    def push_file(self, name: str) -> None:
        self.calls.append(name)
        self.now += 1.0

    def push_all(self) -> bool:
        return True


def test_rows_go_up_every_interval_also_behind_a_backlog_of_files():
    mirror = BacklogMirror(files=7)
    uploader = Uploader(mirror, interval=2.0, clock=lambda: mirror.now)
    done = threading.Event()
    original = mirror.push_file

    def push_file(name):
        original(name)
        if name == mirror.files[-1]:
            done.set()

    mirror.push_file = push_file
    uploader.start()
    mirror.now = 2.0  # the first interval has passed
    uploader.notify("trials")
    assert done.wait(10)
    assert uploader.close(5)
    rows_at = [i for i, call in enumerate(mirror.calls) if call == "rows"]
    gaps = [b - a - 1 for a, b in zip(rows_at, rows_at[1:])]  # files between two pushes of the rows
    assert rows_at[0] == 0 and max(gaps[:3]) <= 2, mirror.calls


@pytest.mark.slow
def test_a_large_file_goes_up_in_pieces_and_a_failure_costs_one_piece(tmp_path, gcs_emulator, gcs_bucket,
                                                                     fault_proxy, monkeypatch):
    import hashlib
    import os

    from hpt_cli.storage import mirror as mirror_module

    monkeypatch.setattr(mirror_module, "MULTIPART_LIMIT", 64 * 1024)  # 70 pieces: two levels of compose
    monkeypatch.setattr(mirror_module, "COMPOSE_MAX", 8)
    spool = spool_with(tmp_path, b"a,ok\n")
    data = os.urandom(70 * 64 * 1024 - 123)
    (spool / "trials" / "t1").mkdir(parents=True)
    (spool / "trials" / "t1" / "model.bin").write_bytes(data)
    Mirror.write_target(spool, GcsLocation(gcs_bucket, "big"))
    mirror = Mirror(spool, GcsLocation(gcs_bucket, "big"), client(fault_proxy.url))
    fault_proxy.fail_rate, fault_proxy.fail_modes = 0.2, {"503"}
    uploader = Uploader(mirror, interval=3600)
    assert uploader.close(120)  # retried, piece by piece, until everything is up
    fault_proxy.fail_rate = 0.0
    mirror.clean_parts()  # the uploader's end cleans too, but its deletes met the injected failures
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    assert hashlib.sha256(bucket.blob("big/trials/t1/model.bin").download_as_bytes()).digest() == \
        hashlib.sha256(data).digest()
    sent = fault_proxy.bytes_uploaded_for(lambda name: name.startswith(f"big/{PARTS}/file-"))
    assert len(data) <= sent < 1.5 * len(data)  # failed pieces again, never the whole file
    assert [b.name for b in bucket.list_blobs(prefix="big/")] == ["big/results.csv", "big/trials/t1/model.bin"]
    assert mirror.pending() == []


def test_pieces_deleted_before_their_compose_are_sent_again(tmp_path, gcs_emulator, gcs_bucket, monkeypatch):
    import os

    from google.api_core.exceptions import GoogleAPICallError

    from hpt_cli.storage import mirror as mirror_module

    monkeypatch.setattr(mirror_module, "MULTIPART_LIMIT", 64 * 1024)
    location = GcsLocation(gcs_bucket, "gone")
    spool = spool_with(tmp_path, b"a,ok\n")
    Mirror.write_target(spool, location)
    data = os.urandom(3 * 64 * 1024 + 5)
    (spool / "model.bin").write_bytes(data)
    mirror = Mirror(spool, location, client(gcs_emulator.url))
    step = mirror._step

    def step_then_lose_the_pieces(done, what):  # another process's clean_parts, just before the compose
        step(done, what)
        if what.endswith("-00003"):  # the last piece is up
            mirror.clean_parts(older_than=0)  # as an hpt sync of the spool, at the same time

    monkeypatch.setattr(mirror, "_step", step_then_lose_the_pieces)
    with pytest.raises(GoogleAPICallError):  # GCS: 404; the emulator: 500
        mirror.push_file("model.bin")
    monkeypatch.setattr(mirror, "_step", step)
    mirror.push_file("model.bin")  # all pieces again, not a compose of pieces that are gone
    assert client(gcs_emulator.url).bucket(gcs_bucket).blob("gone/model.bin").download_as_bytes() == data


def test_a_stop_during_the_tidying_after_a_full_upload_is_still_a_full_upload():
    class SlowTidy(BacklogMirror):
        def clean_parts(self, older_than=None):
            tidy.wait(10)  # deletes that hang: no progress

    tidy = threading.Event()
    mirror = SlowTidy(files=0)
    mirror.cancel = lambda: tidy.set()
    stop = threading.Event()
    stop.set()  # SIGTERM came first
    uploader = Uploader(mirror, interval=3600)
    assert uploader.close(60, stop=stop) is True and not uploader.stopped
