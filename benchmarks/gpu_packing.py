"""GPU packing: does hpt keep a GPU busy with small trials, and does an out-of-memory trial stay contained?

Run on a machine with an NVIDIA GPU and torch with CUDA (never in CI; `make bench` does not run it):

    .venv/bin/python benchmarks/gpu_packing.py [--trials 32] [--epochs 30] [--gpu 0]
    .venv/bin/python benchmarks/gpu_packing.py --dry-run     # the code paths on the CPU, fake GPU

It measures, on one GPU, the same N small lstm trials (bundled data) run three ways:

  hpt 1/8        LocalExecutor with slots from plan(gpus_per_trial=1/8): 8 warm workers on the GPU
  hand x8        8 processes started by hand (CUDA_VISIBLE_DEVICES=<gpu>), each running N/8 trials
                 one after the other: what a person would do without hpt
  hpt 1          plan(gpus_per_trial=1): one worker on the GPU, trials one after the other

and reports wall time, trials per minute, mean and peak GPU utilisation and peak memory used
(nvidia-smi sampled every 0.5 s). Then two containment checks:

  OOM            a trial that allocates more memory than the GPU has: its row must be one line
                 ("GPU out of memory on cuda:0 ...") and the next trial on the same slot must run
  share cap      with gpus_per_trial 1/2 (HPT_GPU_MEMORY_MIB = total/2), a trial that allocates 60%
                 of the GPU must fail with the same line while its neighbour slot goes on

Results go to stdout and benchmarks/results/gpu_packing.json. Without a GPU it exits 1 with a message.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from hpt_cli.devices import detect, plan, select  # noqa: E402
from hpt_cli.executors import Job, LocalExecutor  # noqa: E402
from hpt_cli.spec.model import DataSpec  # noqa: E402
from hpt_cli.trialrun import TrialPayload  # noqa: E402

RANGE = ("2015-01-01", "2016-01-01")


def configs(n: int) -> list[dict]:
    grid = itertools.product([32, 64, 128, 256], [1e-3, 3e-3], [1, 2], [14, 28])
    out = [{"hidden_size": h, "lr": lr, "num_layers": layers, "window": w, "batch_size": 32, "patience": 0}
           for h, lr, layers, w in grid]
    return list(itertools.islice(itertools.cycle(out), n))


def payloads(n: int, epochs: int, folder: Path, tag: str) -> list[TrialPayload]:
    return [TrialPayload(trial_id=f"{tag}-{i}", architecture="lstm", params=p, date_range=RANGE, seed=i,
                         epochs=epochs, data=DataSpec(), artifact_dir=str(folder / tag / str(i)))
            for i, p in enumerate(configs(n))]


class Sampler:
    """nvidia-smi utilisation and memory of one GPU, every `every` seconds, in a thread."""

    def __init__(self, gpu: int, every: float = 0.5):
        self.gpu, self.every = gpu, every
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "-i", str(self.gpu), "--query-gpu=utilization.gpu,memory.used",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True,
                                     timeout=5).stdout.strip()
                util, used = (int(float(x)) for x in out.split(","))
                self.samples.append((util, used))
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.samples:
            return {"util_mean_pct": None, "util_peak_pct": None, "mem_peak_mib": None}
        utils = [u for u, _ in self.samples]
        return {"util_mean_pct": round(statistics.fmean(utils), 1), "util_peak_pct": max(utils),
                "mem_peak_mib": max(m for _, m in self.samples)}


def run_executor(slots, jobs: list[Job]) -> tuple[float, list]:
    results = []
    pending = list(jobs)
    started = time.perf_counter()
    with LocalExecutor(len(slots), slot_env=[s.env for s in slots]) as ex:
        while pending or len(results) < len(jobs):
            while pending and ex.free_slots():
                ex.submit(pending.pop(0))
            results.extend(ex.wait(timeout=1.0))
    return time.perf_counter() - started, results


def trial_jobs(items: list[TrialPayload]) -> list[Job]:
    return [Job(key=p.trial_id, func="hpt_cli.trialrun:run_trial", payload=p, timeout=1800.0) for p in items]


def hpt_way(inventory, fraction, n, epochs, folder, tag, sampler_gpu) -> dict:
    slots = plan(inventory, fraction)
    with Sampler(sampler_gpu) as sampler:
        wall, results = run_executor(slots, trial_jobs(payloads(n, epochs, folder, tag)))
    failed = [r.error for r in results if r.status != "ok"]
    return {"way": tag, "slots": len(slots), "wall_s": round(wall, 2), "trials_per_min": round(n / wall * 60, 1),
            "failed": len(failed), "first_error": failed[0] if failed else None, **sampler.summary()}


_HAND = """
import pickle, sys
sys.path[:0] = {path!r}
from hpt_cli.trialrun import run_trial
for p in pickle.load(open(sys.argv[1], "rb")):
    run_trial(p)
"""


def hand_way(gpu_env: dict, n, epochs, folder, sampler_gpu, processes=8) -> dict:
    import pickle

    items = payloads(n, epochs, folder, "hand")
    script = _HAND.format(path=[str(HERE), str(ROOT)])
    procs = []
    started = time.perf_counter()
    with Sampler(sampler_gpu) as sampler:
        for k in range(processes):
            chunk = folder / f"hand-{k}.pkl"
            chunk.write_bytes(pickle.dumps(items[k::processes]))
            procs.append(subprocess.Popen([sys.executable, "-c", script, str(chunk)], env={**os.environ, **gpu_env}))
        codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    return {"way": f"hand x{processes}", "slots": processes, "wall_s": round(wall, 2),
            "trials_per_min": round(n / wall * 60, 1), "failed": sum(1 for c in codes if c), "first_error": None,
            **sampler.summary()}


def allocate_trial(params: dict, ctx) -> dict:
    """Allocates params["fraction"] of the GPU's total memory (or a fixed MiB), then reports."""
    import torch

    from hpt_cli.devices.worker import configure_torch

    configure_torch()  # the slot's memory cap, as hpt's own lstm does once torch is imported
    total = torch.cuda.get_device_properties(0).total_memory if ctx.device.startswith("cuda") else 1 << 30
    nbytes = int(total * params["fraction"]) if "fraction" in params else int(params["mib"]) << 20
    block = torch.empty(nbytes, dtype=torch.uint8, device=ctx.device)
    block.fill_(1)
    time.sleep(params.get("hold_s", 0.0))
    return {"allocated_mib": nbytes / (1 << 20)}


def containment(inventory, folder: Path) -> dict:
    def job(key, params):
        p = TrialPayload(trial_id=key, architecture="gpu_packing:allocate_trial", params=params, date_range=RANGE,
                         seed=0, epochs=None, data=None, artifact_dir=str(folder / key))
        return Job(key=key, func="hpt_cli.trialrun:run_trial", payload=p, timeout=600.0)

    out = {}
    one = plan(inventory, 1)[:1]  # one slot, one GPU: too much, then a small trial on the same warm worker
    _, results = run_executor(one, [job("too-much", {"fraction": 1.5})])
    _, after = run_executor(one, [job("too-much-2", {"fraction": 1.5}), job("small", {"mib": 256})])
    out["oom"] = {"status": results[0].status, "error": results[0].error,
                  "then_small": {r.key: r.status for r in after}}
    halves = plan(inventory, 0.5)[:2]  # two slots on one GPU, each capped at half of it
    _, results = run_executor(halves, [job("greedy", {"fraction": 0.6, "hold_s": 2.0}),
                                       job("modest", {"fraction": 0.3, "hold_s": 2.0})])
    out["share_cap"] = {r.key: {"status": r.status, "error": r.error} for r in results}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--gpu", default="0", help="the GPU to measure on, as nvidia-smi numbers it")
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU: a fake one (HPT_FAKE_GPUS), 8 trials of 2 epochs on the CPU, no checks")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gpu_packing.json",
                        help="the JSON report, rewritten after every step")
    parser.add_argument("--ways", default="1/8,hand,1,checks",
                        help="steps to run, in order: 1/8, hand, 1 (the three ways) and checks (OOM, share cap)")
    args = parser.parse_args()

    if args.dry_run:
        os.environ["HPT_FAKE_GPUS"] = "1x80GiB"
        args.trials, args.epochs = 8, 2
    else:
        os.environ.pop("HPT_FAKE_GPUS", None)
        try:
            import torch
        except ImportError:
            return _no_gpu("torch is not installed (pip install 'hpt-cli[torch]' with a CUDA build)")
        if shutil.which("nvidia-smi") is None or not torch.cuda.is_available():
            return _no_gpu("no GPU here (nvidia-smi / torch.cuda.is_available())")
    inventory = select(detect(), args.gpu)
    if not inventory.gpus:
        return _no_gpu(f"no GPU found ({inventory.note})")
    gpu = inventory.gpus[0]
    print(f"{gpu.label}: {gpu.name}, {gpu.memory_free_mib}/{gpu.memory_total_mib} MiB free; "
          f"{args.trials} lstm trials of {args.epochs} epochs each", flush=True)

    rows: list[dict] = []
    checks: dict = {}

    def save() -> None:  # after every step: a run cut short by a time limit keeps what it measured
        if args.dry_run:
            return
        report = {"machine": platform.node(), "gpu": gpu.name, "trials": args.trials, "epochs": args.epochs,
                  "ways": rows, "checks": checks, "acceptance": acceptance(rows)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        hand_env = {"CUDA_VISIBLE_DEVICES": str(gpu.index), "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                    "HPT_DEVICE": "cuda:0", "OMP_NUM_THREADS": "1"}
        steps = {"1/8": lambda: hpt_way(inventory, 1 / 8, args.trials, args.epochs, folder, "hpt 1/8", gpu.index),
                 "hand": lambda: hand_way(hand_env, args.trials, args.epochs, folder, gpu.index),
                 "1": lambda: hpt_way(inventory, 1, args.trials, args.epochs, folder, "hpt 1", gpu.index)}
        for name in args.ways.split(","):
            if name == "checks":
                if not args.dry_run:
                    checks.update(containment(inventory, folder))
                    print(json.dumps(checks, indent=1), flush=True)
            else:
                rows.append(steps[name]())
                print(rows[-1], flush=True)
            save()

    print()
    print(f"{'way':10} {'slots':>5} {'wall s':>8} {'trials/min':>10} {'util %':>7} {'peak MiB':>9} {'failed':>6}")
    for r in rows:
        print(f"{r['way']:10} {r['slots']:>5} {r['wall_s']:>8} {r['trials_per_min']:>10} "
              f"{r['util_mean_pct'] if r['util_mean_pct'] is not None else '-':>7} "
              f"{r['mem_peak_mib'] if r['mem_peak_mib'] is not None else '-':>9} {r['failed']:>6}")
    for line in acceptance(rows):
        print(line)
    if not args.dry_run:
        print(f"written: {args.out}")
    return 0


def acceptance(rows: list[dict]) -> list[str]:
    """Issue 5's acceptance 2, from the ways measured: 1/8 within 1/0.9 of the hand-launched
    processes, and at least 5x faster than gpus_per_trial 1."""
    wall = {r["way"]: r["wall_s"] for r in rows if not r["failed"]}
    out = []
    if "hpt 1/8" in wall and "hand x8" in wall:
        ratio = wall["hpt 1/8"] / wall["hand x8"]
        out.append(f"hpt 1/8 / hand x8 = {ratio:.3f} (at most {1 / 0.9:.3f}: {'met' if ratio <= 1 / 0.9 else 'MISSED'})")
    if "hpt 1/8" in wall and "hpt 1" in wall:
        speedup = wall["hpt 1"] / wall["hpt 1/8"]
        out.append(f"hpt 1 / hpt 1/8 = {speedup:.2f}x (at least 5x: {'met' if speedup >= 5 else 'MISSED'})")
    return out


def _no_gpu(why: str) -> int:
    print(f"gpu_packing: {why}; this benchmark needs an NVIDIA GPU and is not run in CI "
          f"(try --dry-run to exercise it on the CPU)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
