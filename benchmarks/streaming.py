"""3. Streaming latency: a trial's return in the worker -> its row readable in results.csv, locally
and on the GCS emulator; and 4. upload volume: bytes sent for results.csv / its final size."""

from __future__ import annotations

import csv
import io
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import HPT, Figure, env_with_benchmarks


def _spec(folder: Path, trials: int, name: str, sleep: float = 0.0) -> Path:
    """Trials that sleep `sleep` seconds each, so rows arrive spread over the run."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "architecture": "noop:train", "metrics": ["val_mse", "returned_at"],
                                "date-range": [["2015-01-01", "2015-02-01"]],
                                "parameters": {"i": list(range(trials)), "sleep": sleep}}))
    return path


def _latencies(read, proc, poll: float) -> list[float]:
    """Poll `read()` (bytes of results.csv or None) until the run ends; seen time - returned_at."""
    seen: dict[str, float] = {}
    returned: dict[str, float] = {}
    try:
        _follow(read, proc, poll, seen, returned)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return [seen[k] - returned[k] for k in seen]


def _follow(read, proc, poll: float, seen: dict, returned: dict) -> None:
    while True:
        done = proc.poll() is not None
        data = read()
        now = time.time()
        if data:
            text = data.decode()
            text = text[: text.rfind("\n") + 1]
            for row in csv.DictReader(io.StringIO(text)):
                if row["trial_id"] not in seen:
                    seen[row["trial_id"]] = now
                    returned[row["trial_id"]] = float(row["returned_at"])
        if done:
            return
        time.sleep(poll)


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) > 1 else xs[0]


def local(trials: int = 60) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = _spec(folder, trials, "stream", sleep=0.05)
        out = folder / "out"
        proc = subprocess.Popen([HPT, "run", str(spec), "-o", str(out), "-j", "2", "-q"], env=env_with_benchmarks(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def read():
            files = list(out.glob("*/results.csv"))
            return files[0].read_bytes() if files else None

        lat = _latencies(read, proc, 0.002)
    ms = [1000 * x for x in lat]
    p50 = Figure("streaming, local: return -> row readable, p50", [statistics.median(ms)], "ms")
    f95 = Figure("streaming, local: return -> row readable, p95", [p95(ms)], "ms", target="<= 500 ms")
    f95.met = f95.median <= 500
    return [p50, f95]


def gcs(trials: int = 60, interval: float = 1.0) -> list[Figure]:
    try:
        from tests.gcs.emulator import Emulator, client
        from tests.gcs.proxy import FaultProxy
    except Exception:  # noqa: BLE001 - the emulator comes with the test extras
        return []
    figures = []
    with Emulator(backend="memory") as emulator, FaultProxy(emulator.url) as proxy, \
            tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        client(emulator.url).create_bucket("bench")
        spec = _spec(folder, trials, "gstream", sleep=0.1)
        env = env_with_benchmarks(STORAGE_EMULATOR_HOST=proxy.url, HPT_SPOOL=str(folder / "spool"))
        proc = subprocess.Popen([HPT, "run", str(spec), "-o", "gs://bench/s", "-j", "2", "-q", "--upload-interval",
                                 str(interval)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bucket = client(emulator.url).bucket("bench")

        def read():
            blobs = [b for b in bucket.list_blobs(prefix="s/") if b.name.endswith("/results.csv")]
            return blobs[0].download_as_bytes() if blobs else None

        lat = _latencies(read, proc, 0.05)
        ms = [1000 * x for x in lat]
        figures.append(Figure(f"streaming, GCS (flush every {interval:g} s): p50", [statistics.median(ms)], "ms"))
        f95 = Figure(f"streaming, GCS (flush every {interval:g} s): p95", [p95(ms)], "ms",
                     target=f"<= {1000 * (interval + 1):.0f} ms")
        f95.met = f95.median <= 1000 * (interval + 1)
        figures.append(f95)

        # 4. upload volume over a 1,000-row run
        proxy.reset_counters()
        spec = _spec(folder, 1000, "volume")
        env = env_with_benchmarks(STORAGE_EMULATOR_HOST=proxy.url, HPT_SPOOL=str(folder / "spool2"))
        subprocess.run([HPT, "run", str(spec), "-o", "gs://bench/v", "-j", "2", "-q", "--upload-interval", "0.5"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        final = next((folder / "spool2").rglob("results.csv")).stat().st_size
        sent = proxy.bytes_uploaded_for(lambda name: name.rsplit("/", 1)[-1].startswith("results"))
        vol = Figure("upload volume: bytes sent for results.csv / final size (1,000 rows)", [sent / final], "ratio",
                     target="<= 3", extra={"bytes_sent": sent, "final_size": final})
        vol.met = vol.median <= 3
        figures.append(vol)
    return figures
