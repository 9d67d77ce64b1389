"""`hpt run --output gs://...`, `hpt sync`, `hpt watch` against a real emulator process, with
faults injected by a proxy. Nothing here touches real GCS."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.storage.gcs import GcsLocation
from hpt_cli.storage.mirror import Mirror
from tests.gcs.emulator import Emulator, client
from tests.helpers import HPT, subprocess_env, write_spec

pytestmark = pytest.mark.slow
spec_file = write_spec


def env_for(url: str, spool: Path) -> dict[str, str]:
    return subprocess_env(STORAGE_EMULATOR_HOST=url, HPT_SPOOL=str(spool))


def hpt_run(spec: Path, output: str, url: str, spool: Path, *args: str, timeout: float = 120):
    return subprocess.run([HPT, "run", str(spec), "-o", output, "-j", "2", *args], env=env_for(url, spool),
                          capture_output=True, text=True, timeout=timeout)


def only_run(spool: Path) -> Path:
    (folder,) = [p.parent for p in spool.rglob("results.csv")]
    return folder


def bucket_bytes(url: str, bucket: str, key: str) -> bytes:
    return client(url).bucket(bucket).blob(key).download_as_bytes()


def test_rows_grow_in_the_bucket_while_the_run_goes_on(tmp_path, gcs_emulator, gcs_bucket):
    spec = spec_file(tmp_path, name="stream", architecture="tests.archs:fault",
                     parameters={"kind": "sleep", "seconds": 0.25, "value": list(range(16))})
    spool = tmp_path / "spool"
    proc = subprocess.Popen([HPT, "run", str(spec), "-o", f"gs://{gcs_bucket}/sweeps", "-j", "2",
                             "--upload-interval", "0.3"], env=env_for(gcs_emulator.url, spool),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reader = client(gcs_emulator.url).bucket(gcs_bucket)  # the laptop: another process than the run
    seen = []
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        blobs = [b for b in reader.list_blobs(prefix="sweeps/") if b.name.endswith("/results.csv")]
        if blobs:
            frame = pd.read_csv(io.BytesIO(blobs[0].download_as_bytes()))
            assert frame["status"].eq("ok").all() and frame["trial_id"].is_unique  # whole rows only
            seen.append(len(frame))
        time.sleep(0.1)
    output = proc.stdout.read().decode()
    assert proc.wait(timeout=60) == 0, output
    assert any(0 < n < 16 for n in seen), f"row counts seen: {sorted(set(seen))}"
    assert seen == sorted(seen)
    folder = only_run(spool)
    key = f"sweeps/{folder.name}"
    assert bucket_bytes(gcs_emulator.url, gcs_bucket, f"{key}/results.csv") == (folder / "results.csv").read_bytes()
    names = {b.name for b in reader.list_blobs(prefix=key + "/")}
    frame = pd.read_csv(folder / "results.csv")
    assert len(frame) == 16
    for trial_id in frame["trial_id"]:
        assert f"{key}/trials/{trial_id}/model.bin" in names and f"{key}/trials/{trial_id}/log.txt" in names
    assert {f"{key}/spec.json", f"{key}/summary.json"} <= names
    assert not [n for n in names if "/.parts/" in n]
    assert frame["artifact_dir"].str.startswith(f"gs://{gcs_bucket}/{key}/trials/").all()


def test_a_thousand_rows_upload_under_three_times_the_file(tmp_path, gcs_bucket, fault_proxy):
    spec = spec_file(tmp_path, name="volume", architecture="tests.archs:noop", parameters={"i": list(range(1000))})
    spool = tmp_path / "spool"
    result = hpt_run(spec, f"gs://{gcs_bucket}/v", fault_proxy.url, spool, "--upload-interval", "0.2", "-q")
    assert result.returncode == 0, result.stderr
    final = (only_run(spool) / "results.csv").stat().st_size
    sent = fault_proxy.bytes_uploaded_for(lambda name: name.rsplit("/", 1)[-1].startswith("results"))
    ratio = sent / final
    print(f"results.csv {final} bytes; uploaded for it {sent} bytes; ratio {ratio:.2f}")
    assert final > 50_000 and 1 <= ratio < 3


def test_a_flaky_network_still_gives_every_row_exactly_once(tmp_path, gcs_emulator, gcs_bucket, fault_proxy):
    fault_proxy.fail_rate = 0.3
    spec = spec_file(tmp_path, name="flaky", architecture="tests.archs:fault",
                     parameters={"kind": "sleep", "seconds": 0.05, "value": list(range(24))})
    spool = tmp_path / "spool"
    result = hpt_run(spec, f"gs://{gcs_bucket}/f", fault_proxy.url, spool, "--upload-interval", "0.2",
                     "--upload-timeout", "60", "-q")
    assert result.returncode == 0, result.stderr
    failures = [r for r in fault_proxy.requests if r[2] in (-1, 429, 503)]
    assert len(failures) > 10
    folder = only_run(spool)
    remote = bucket_bytes(gcs_emulator.url, gcs_bucket, f"f/{folder.name}/results.csv")
    assert remote == (folder / "results.csv").read_bytes()
    frame = pd.read_csv(io.BytesIO(remote))
    assert len(frame) == 24 and frame["trial_id"].is_unique and sorted(frame["value"]) == list(range(24))


def test_a_compose_whose_response_is_lost_is_not_repeated(tmp_path, gcs_emulator, gcs_bucket, fault_proxy):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "results.csv").write_bytes(b"trial_id,status\na,ok\n")
    mirror = Mirror(spool, GcsLocation(gcs_bucket, "run"), client(fault_proxy.url))
    assert mirror.push_results()
    with open(spool / "results.csv", "ab") as fh:
        fh.write(b"b,ok\n")
    fault_proxy.drop_response_once(lambda method, path: method == "POST" and "/compose" in path)
    assert mirror.push_results()  # the compose landed; its answer was lost; it is not redone
    assert [r for r in fault_proxy.requests if "/compose" in r[1]][0][2] == -1
    assert mirror.push_results()
    fresh = Mirror(spool, GcsLocation(gcs_bucket, "run"), client(fault_proxy.url))
    assert fresh.push_results()  # a new process (hpt sync) agrees that nothing is missing
    assert bucket_bytes(gcs_emulator.url, gcs_bucket, "run/results.csv") == b"trial_id,status\na,ok\nb,ok\n"
    assert len([r for r in fault_proxy.requests if "/compose" in r[1]]) == 1


def test_storage_down_exits_4_then_sync_completes_without_duplicates(tmp_path):
    with Emulator(backend="filesystem") as emulator:
        client(emulator.url).create_bucket("down-test")
        spec = spec_file(tmp_path, name="down", architecture="tests.archs:fault",
                         parameters={"kind": "sleep", "seconds": 0.2, "value": list(range(20))})
        spool = tmp_path / "spool"
        proc = subprocess.Popen([HPT, "run", str(spec), "-o", "gs://down-test/s", "-j", "2",
                                 "--upload-interval", "0.2", "--upload-timeout", "2"],
                                env=env_for(emulator.url, spool), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        reader = client(emulator.url).bucket("down-test")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until some rows are in the bucket
            blobs = [b for b in reader.list_blobs(prefix="s/") if b.name.endswith("results.csv")]
            if blobs and blobs[0].size > 200:
                break
            time.sleep(0.05)
        emulator.stop()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 4, err
        folder = only_run(spool)
        assert err.strip().splitlines()[-1] == (
            f"error: gs://down-test/s/{folder.name} unreachable after retries (ConnectionError: no answer from "
            f"127.0.0.1:{emulator.port}); 20 rows and the trial files are kept in the spool {folder}; upload "
            f"them with: hpt sync {folder}")
        assert len(pd.read_csv(folder / "results.csv")) == 20
        emulator.start()
        sync = subprocess.run([HPT, "sync", str(folder)], env=env_for(emulator.url, spool), capture_output=True,
                              text=True, timeout=60)
        assert sync.returncode == 0, sync.stderr
        again = subprocess.run([HPT, "sync", str(folder)], env=env_for(emulator.url, spool),
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        remote = bucket_bytes(emulator.url, "down-test", f"s/{folder.name}/results.csv")
        assert remote == (folder / "results.csv").read_bytes()
        frame = pd.read_csv(io.BytesIO(remote))
        assert len(frame) == 20 and frame["trial_id"].is_unique
        names = {b.name for b in client(emulator.url).list_blobs("down-test", prefix=f"s/{folder.name}/")}
        assert f"s/{folder.name}/summary.json" in names
        assert all(f"s/{folder.name}/trials/{t}/model.bin" in names for t in frame["trial_id"])


def test_resume_reads_finished_trials_from_the_bucket(tmp_path, gcs_emulator, gcs_bucket):
    spec = spec_file(tmp_path, name="resume", architecture="tests.archs:fault",
                     parameters={"kind": "ok", "value": list(range(6))})
    first = hpt_run(spec, f"gs://{gcs_bucket}/r", gcs_emulator.url, tmp_path / "spool-a", "-q")
    assert first.returncode == 0, first.stderr
    again = hpt_run(spec, f"gs://{gcs_bucket}/r", gcs_emulator.url, tmp_path / "spool-b")  # another machine
    assert again.returncode == 0, again.stderr
    assert "6 already done (resuming)" in again.stderr
    folder = only_run(tmp_path / "spool-b")
    remote = bucket_bytes(gcs_emulator.url, gcs_bucket, f"r/{folder.name}/results.csv")
    assert len(pd.read_csv(io.BytesIO(remote))) == 6


def test_watch_follows_a_gcs_run_to_its_end(tmp_path, gcs_emulator, gcs_bucket):
    spec = spec_file(tmp_path, name="watched", architecture="tests.archs:fault",
                     parameters={"kind": ["ok", "raise"], "value": [1, 2, 3]})
    result = hpt_run(spec, f"gs://{gcs_bucket}/w", gcs_emulator.url, tmp_path / "spool", "-q")
    assert result.returncode == 1
    folder = only_run(tmp_path / "spool")
    watch = subprocess.run([HPT, "watch", f"gs://{gcs_bucket}/w/{folder.name}", "--interval", "0.1"],
                           env=env_for(gcs_emulator.url, tmp_path / "spool"), capture_output=True, text=True,
                           timeout=60)
    assert watch.returncode == 1
    lines = watch.stdout.splitlines()
    assert lines[0] == f"watching gs://{gcs_bucket}/w/{folder.name}"
    assert sum(line.startswith("failed: ") and "ValueError: bad value for trial" in line for line in lines) == 3
    assert "[6/6] 3 ok, 3 failed, best val_mse 1 (trial " in watch.stdout
    assert lines[-1].startswith("complete: exit code 1")


def test_a_missing_bucket_is_one_line_and_exit_2(tmp_path, gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.setenv("HPT_SPOOL", str(tmp_path / "spool"))
    spec = spec_file(tmp_path, architecture="ridge")
    for _ in range(2):  # the spool's lock is not kept by the first: the second says the same
        result = CliRunner().invoke(cli, ["run", str(spec), "-o", "gs://no-such-bucket/x"])
        assert result.exit_code == 2
        assert result.output == ("error: gs://no-such-bucket: the bucket does not exist; create it (gcloud "
                                 "storage buckets create gs://no-such-bucket) or fix the output location\n")
    assert not [p for p in (tmp_path / "spool").rglob("*") if p.is_file()]  # no spool left with a .lock in it


def test_no_credentials_says_how_to_log_in(tmp_path, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no gcloud application-default file
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # not on a Google VM: no metadata server to ask
    spec = spec_file(tmp_path, architecture="ridge")
    result = CliRunner().invoke(cli, ["run", str(spec), "-o", "gs://some-bucket/x"])
    assert result.exit_code == 2
    assert result.output == ("error: no Google credentials found: run `gcloud auth application-default login` "
                             "or set GOOGLE_APPLICATION_CREDENTIALS\n")


def test_credentials_set_but_unusable_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    spec = spec_file(tmp_path, architecture="ridge")
    result = CliRunner().invoke(cli, ["run", str(spec), "-o", "gs://some-bucket/x"])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: GOOGLE_APPLICATION_CREDENTIALS={tmp_path / 'missing.json'} cannot be "
                                    "used (DefaultCredentialsError: ")
    assert result.output.endswith("point it at a service account key file (JSON), or unset it and run `gcloud "
                                  "auth application-default login`\n")


def test_permission_denied_is_a_user_error():
    from google.api_core import exceptions

    from hpt_cli.storage.gcs import user_error

    error = user_error(exceptions.Forbidden("caller does not have storage.objects.create access"),
                       GcsLocation("b", "p"))
    assert str(error) == ("gs://b/p: permission denied (Forbidden: 403 caller does not have storage.objects.create "
                          "access); the account needs roles/storage.objectAdmin on the bucket (gcloud auth "
                          "application-default login to use your own)")


def test_sync_of_a_folder_that_is_no_spool(tmp_path):
    result = CliRunner().invoke(cli, ["sync", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == (f"error: {tmp_path}: not a spool folder (no .hpt-sync/target); give the path "
                             "printed by `hpt run`\n")


def test_sync_verify_uploads_again_what_the_bucket_lost(tmp_path, gcs_emulator, gcs_bucket):
    spec = spec_file(tmp_path, name="lost", architecture="tests.archs:fault",
                     parameters={"kind": "ok", "value": [1, 2]})
    spool = tmp_path / "spool"
    first = hpt_run(spec, f"gs://{gcs_bucket}/v", gcs_emulator.url, spool, "-q")
    assert first.returncode == 0, first.stderr
    folder = only_run(spool)
    trials = sorted(p.name for p in (folder / "trials").iterdir())
    bucket = client(gcs_emulator.url).bucket(gcs_bucket)
    run = f"v/{folder.name}"
    bucket.blob(f"{run}/trials/{trials[0]}/model.bin").delete()  # deleted by hand
    bucket.blob(f"{run}/summary.json").delete()
    size = (folder / "trials" / trials[1] / "model.bin").stat().st_size  # same size, other bytes: CRC32C
    bucket.blob(f"{run}/trials/{trials[1]}/model.bin").upload_from_string(b"x" * size)

    def sync(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([HPT, "sync", *args, str(folder)], env=env_for(gcs_emulator.url, spool),
                              capture_output=True, text=True, timeout=60)

    plain = sync()  # trusts the spool's record: uploads nothing
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.endswith(f"and every file of {folder} went up (by the spool's record of its uploads: "
                                 "--verify checks the bucket itself)\n")
    assert not bucket.blob(f"{run}/summary.json").exists()
    verified = sync("--verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == (
        f"verified: the bucket lacked 3 of the files uploaded before (summary.json, trials/{trials[0]}/model.bin, "
        f"trials/{trials[1]}/model.bin); uploaded again\n"
        f"synced: gs://{gcs_bucket}/{run} holds results.csv ({(folder / 'results.csv').stat().st_size} bytes) "
        f"and every file of {folder}\n")
    for name in ("summary.json", f"trials/{trials[0]}/model.bin", f"trials/{trials[1]}/model.bin"):
        assert bucket_bytes(gcs_emulator.url, gcs_bucket, f"{run}/{name}") == (folder / name).read_bytes()
    again = sync("--verify")
    assert again.stdout.splitlines()[0] == "verified: the bucket lacked 0 of the files uploaded before"
