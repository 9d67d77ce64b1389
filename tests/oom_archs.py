"""A trial that runs out of GPU memory next to a neighbour, for tests/test_oom_retry.py, referenced
as "tests.oom_archs:trial". It runs on a fake inventory (HPT_FAKE_GPUS): its GPU is its slot's
CUDA_VISIBLE_DEVICES, and its neighbours are the other trials' marker files in
$HPT_TEST_OOM_DIR/gpu<N>/ (each trial's marker lives from its start until its end, and it lists
the others after creating its own and before removing it, so of two trials that overlap, the later
one always sees the earlier). Every attempt appends what it saw to $HPT_TEST_OOM_DIR/seen.jsonl.

The first trial to start claims the part of the big one; the others wait until the big one has
seen a neighbour (or failed), so its first attempt is never alone. The big one fails as torch does
when a GPU is full (hpt turns that into its "GPU out of memory on cuda:0 ..." error):
params["oom"] == "crowded": when it sees a neighbour (its first attempt waits for one; a later
    attempt runs until the other params["trials"] - 1 trials have ended, so that a runner that
    starts one next to it is caught);
params["oom"] == "always": on every attempt, at once.

Also needs_memory (a trial that fails where its memory cap is below params["need_mib"]) and
report_cap (returns the cap it saw), for the whole-GPU retry (tests/test_memory_allowance.py).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

FOLDER_VAR = "HPT_TEST_OOM_DIR"
_DEADLINE_S = 60.0  # only a broken run waits this long: then the test fails on its results


def trial(params, ctx):
    folder = Path(os.environ[FOLDER_VAR])
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    attempt = 1 + len(list(ctx.artifact_dir.glob("attempt-*")))
    (ctx.artifact_dir / f"attempt-{attempt}").touch()
    me = f"{ctx.trial_id}-{attempt}"
    here = folder / f"gpu{gpu}"
    here.mkdir(parents=True, exist_ok=True)
    (here / me).touch()
    big = _claim(folder, ctx.trial_id)
    if big:
        import torch  # noqa: F401  (hpt's out-of-memory error needs torch in the worker, as on a GPU)
    seen = _others(here, me)
    try:
        if big and params["oom"] == "always":
            (folder / "big-saw").touch()
            _oom()
        if big and attempt == 1:
            _until(lambda: _others(here, me))
            seen |= _others(here, me)
            (folder / "big-saw").touch()
        elif big:  # runs until every other trial has ended: a runner that put one here would be seen
            _until(lambda: _ended(folder) >= params["trials"] - 1)
        else:
            _until(lambda: (folder / "big-saw").exists())
            time.sleep(0.2)
        seen |= _others(here, me)
        if big and seen:
            _oom()
    finally:
        seen |= _others(here, me)
        record = {"trial": ctx.trial_id, "attempt": attempt, "gpu": gpu, "big": big, "seen": sorted(seen)}
        with open(folder / "seen.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        (here / me).unlink()
    return {"val_mse": float(params["n"])}


def _claim(folder: Path, trial_id: str, name: str = "big") -> bool:
    """Whether this trial is the big one: the first to link its id to folder/`name`."""
    tmp = folder / f".{name}-{trial_id}-{os.getpid()}"
    tmp.write_text(trial_id)
    try:
        os.link(tmp, folder / name)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return (folder / name).read_text() == trial_id


def _ended(folder: Path) -> int:
    """How many trials other than the big one have ended (each writes one record)."""
    try:
        lines = (folder / "seen.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return len({r["trial"] for r in map(json.loads, lines) if not r["big"]})


def _others(here: Path, me: str) -> set[str]:
    return {p.name for p in here.iterdir() if p.name != me}


def _until(condition) -> None:
    end = time.monotonic() + _DEADLINE_S
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)


def _oom() -> None:
    import torch

    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total "
                                      "capacity of 79.1 GiB of which 1.2 GiB is free.")


def needs_memory(params, ctx):
    """"tests.oom_archs:needs_memory": the first trial to start (its id in $HPT_TEST_OOM_DIR/needy)
    needs params["need_mib"] of GPU memory and fails as torch does when its cap is lower
    (HPT_GPU_MEMORY_MIB as os.environ has it while the trial runs; absent: no cap). Its first
    attempt waits until another trial has started, and every other trial waits until it has failed
    once (then 0.2 s more), so that attempt has a neighbour and trials are left after its retry. Every attempt appends {trial, attempt, needy, pid, cap}
    to $HPT_TEST_OOM_DIR/caps.jsonl as it ends."""
    folder = Path(os.environ[FOLDER_VAR])
    cap = os.environ.get("HPT_GPU_MEMORY_MIB")
    attempt = 1 + len(list(ctx.artifact_dir.glob("attempt-*")))
    (ctx.artifact_dir / f"attempt-{attempt}").touch()
    (folder / f"started-{ctx.trial_id}-{attempt}").touch()
    needy = _claim(folder, ctx.trial_id, "needy")
    try:
        if needy and attempt == 1:
            _until(lambda: any(p.name.startswith("started-") and ctx.trial_id not in p.name
                               for p in folder.iterdir()))
        elif not needy:  # then a while, so that trials are left for after the retry
            _until(lambda: (folder / "needy-failed").exists())
            time.sleep(0.2)
        if needy and cap is not None and int(cap) < params["need_mib"]:
            import torch  # noqa: F401  (hpt's out-of-memory error needs torch in the worker, as on a GPU)

            (folder / "needy-failed").touch()
            _oom()
    finally:
        record = {"trial": ctx.trial_id, "attempt": attempt, "needy": needy, "pid": os.getpid(), "cap": cap}
        with open(folder / "caps.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    return {"val_mse": float(params["n"])}


def report_cap(params, ctx):
    """"tests.oom_archs:report_cap": the memory cap the trial saw (HPT_GPU_MEMORY_MIB, "none")."""
    return {"val_mse": 0.0, "cap": os.environ.get("HPT_GPU_MEMORY_MIB", "none")}
