"""What this machine has to run trials on: its GPUs (as nvidia-smi sees them) and its usable CPUs.

`detect()` asks `nvidia-smi` once (no nvidia-smi, or a failing one, means no GPUs: not an error)
and keeps only the GPUs an existing `CUDA_VISIBLE_DEVICES` lets this process see, in that order.
`select()` applies the `--gpus` option. `fake()` builds an inventory from a short text, for tests
and for `HPT_FAKE_GPUS`, which `detect()` honours instead of asking nvidia-smi.

Nothing here imports torch or initialises CUDA: the runner must not hold a CUDA context.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from hpt_cli.errors import HptError
from hpt_cli.sizes import MIB, parse_size

__all__ = ["FAKE_ENV", "Gpu", "Inventory", "detect", "fake", "parse_mib", "select", "usable_cpus",
           "visible_devices"]

FAKE_ENV = "HPT_FAKE_GPUS"
QUERY = "index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu"
NVIDIA_SMI_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Gpu:
    """One GPU. `index` is nvidia-smi's number (PCI bus order); memory in MiB."""

    index: int
    uuid: str
    name: str
    memory_total_mib: int
    memory_free_mib: int
    memory_used_mib: int
    utilization_pct: int | None  # None where nvidia-smi says [N/A] (MIG, some drivers)

    @property
    def label(self) -> str:
        """How hpt names it in progress lines and rows: "gpu0"."""
        return f"gpu{self.index}"


@dataclass(frozen=True)
class Inventory:
    """The GPUs a run may use (in order) and the CPUs this process may run on.

    `note` says why there is no GPU, for messages ("nvidia-smi not on PATH"); "" otherwise.
    """

    gpus: tuple[Gpu, ...]
    cpus: int
    note: str = ""

    @property
    def indices(self) -> tuple[int, ...]:
        return tuple(g.index for g in self.gpus)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def detect(env: Mapping[str, str] = os.environ, run: Callable[..., subprocess.CompletedProcess] = subprocess.run
           ) -> Inventory:
    """The GPUs nvidia-smi lists, filtered by env's CUDA_VISIBLE_DEVICES, and the usable CPUs.

    With HPT_FAKE_GPUS set in env (see `fake`), that inventory stands in for nvidia-smi's.
    No nvidia-smi on PATH, a failing or hanging one, or unreadable output: no GPUs, with the
    reason in `Inventory.note`. `run` is injectable (tests); it gets subprocess.run's arguments.
    """
    cpus = usable_cpus()
    fake_spec = env.get(FAKE_ENV, "").strip()
    if fake_spec:
        inventory = replace(fake(fake_spec), cpus=cpus)
    else:
        inventory = _query(env, run, cpus)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is None or not inventory.gpus:
        return inventory
    kept = visible_devices(inventory.gpus, visible)
    note = "" if kept else f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    return Inventory(gpus=kept, cpus=cpus, note=note)


def _query(env: Mapping[str, str], run: Callable[..., subprocess.CompletedProcess], cpus: int) -> Inventory:
    argv = ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"]
    try:  # found on env's PATH (subprocess looks there when given env)
        done = run(argv, capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, env=dict(env),
                   stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        return Inventory(gpus=(), cpus=cpus, note="nvidia-smi not on PATH")
    except subprocess.TimeoutExpired:
        return Inventory(gpus=(), cpus=cpus, note=f"nvidia-smi did not answer in {NVIDIA_SMI_TIMEOUT_S:g} s")
    except OSError as exc:
        return Inventory(gpus=(), cpus=cpus, note=f"nvidia-smi could not run: {exc.strerror or exc}")
    if done.returncode != 0:
        said = _first_line(done.stderr) or _first_line(done.stdout) or f"exit code {done.returncode}"
        return Inventory(gpus=(), cpus=cpus, note=f"nvidia-smi failed: {said}")
    try:
        gpus = parse_query(done.stdout)
    except ValueError as exc:
        return Inventory(gpus=(), cpus=cpus, note=f"nvidia-smi output not understood: {exc}")
    return Inventory(gpus=gpus, cpus=cpus, note="" if gpus else "nvidia-smi lists no GPU")


def parse_query(text: str) -> tuple[Gpu, ...]:
    """Rows of `nvidia-smi --query-gpu=<QUERY> --format=csv,noheader,nounits`, sorted by index."""
    gpus = []
    for row in csv.reader(text.splitlines(), skipinitialspace=True):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 7:
            raise ValueError(f"expected 7 fields, got {len(row)}: {', '.join(row)!r}")
        fields = [f.strip() for f in row]
        index, uuid = fields[0], fields[1]
        name = ", ".join(fields[2:-4])  # a name with a comma in it spans fields
        total, used, free, util = fields[-4:]
        gpus.append(Gpu(index=int(index), uuid=uuid, name=name, memory_total_mib=_mib_or_zero(total),
                        memory_free_mib=_mib_or_zero(free), memory_used_mib=_mib_or_zero(used),
                        utilization_pct=_int_or_none(util)))
    return tuple(sorted(gpus, key=lambda g: g.index))


def visible_devices(gpus: tuple[Gpu, ...], visible: str) -> tuple[Gpu, ...]:
    """The GPUs a CUDA_VISIBLE_DEVICES value lets through, in its order.

    Entries are nvidia-smi indices or (prefixes of) GPU-/MIG- UUIDs, comma-separated. As in
    CUDA, the list stops at the first entry that names no GPU ("" and "-1" hide every GPU).
    A MIG- UUID cannot be matched against nvidia-smi's GPU list and also stops it (MIG
    partitions are not placed by hpt; give a MIG instance to hpt as its parent GPU's UUID).
    """
    by_index = {g.index: g for g in gpus}
    kept: list[Gpu] = []
    for entry in (e.strip() for e in visible.split(",")):
        gpu = None
        if re.fullmatch(r"\d+", entry):
            gpu = by_index.get(int(entry))
        elif entry.startswith("GPU-"):
            matches = [g for g in gpus if g.uuid.startswith(entry)]
            gpu = matches[0] if len(matches) == 1 else None
        if gpu is None:
            break
        if gpu not in kept:
            kept.append(gpu)
    return tuple(kept)


def select(inventory: Inventory, spec: str | None) -> Inventory:
    """Apply the `--gpus` option: None or "all" = every detected GPU; "none" = no GPU;
    "0,2" = those nvidia-smi indices, in that order. Raises HptError (one line) otherwise."""
    if spec is None or spec.strip().lower() == "all":
        return inventory
    text = spec.strip()
    if text.lower() == "none":
        return Inventory(gpus=(), cpus=inventory.cpus, note="--gpus none")
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise HptError(f"--gpus {spec}: expected GPU indices such as 0,2 (as `hpt devices` lists them), "
                       f"'all' or 'none'")
    by_index = {g.index: g for g in inventory.gpus}
    found = ", ".join(str(i) for i in by_index) or "none"
    chosen: list[Gpu] = []
    for p in parts:
        i = int(p)
        if i not in by_index:
            raise HptError(f"--gpus {spec}: no GPU {i} here (found: {found})")
        if by_index[i] in chosen:
            raise HptError(f"--gpus {spec}: GPU {i} is named twice")
        chosen.append(by_index[i])
    return Inventory(gpus=tuple(chosen), cpus=inventory.cpus)


def fake(spec: str, cpus: int | None = None) -> Inventory:
    """An inventory from text, for tests and for HPT_FAKE_GPUS (no GPU needed).

    Comma-separated items `[COUNTx][NAME:]TOTAL[:USED]`; sizes in MiB, or with a unit
    (MiB, GiB, MB, GB). Indices count from 0 across items; UUIDs are GPU-fake-<index>.

        "4x80GiB"                   four 80 GiB GPUs, all free
        "A100:40960,A100:40960"     two A100s of 40960 MiB
        "2xH100:80GiB:30GiB"        two H100s, 30 GiB of each used by other processes
        "none" or "0"               no GPU
    """
    text = spec.strip()
    gpus: list[Gpu] = []
    if text.lower() not in ("", "none", "0"):
        for item in (i.strip() for i in text.split(",")):
            try:
                count, name, total, used = _fake_item(item)
            except ValueError as exc:
                raise HptError(f"{FAKE_ENV}={spec!r}: {exc}; expected e.g. '4x80GiB' or "
                               f"'A100:40960,A100:40960' ([COUNTx][NAME:]TOTAL[:USED])") from None
            for _ in range(count):
                i = len(gpus)
                gpus.append(Gpu(index=i, uuid=f"GPU-fake-{i}", name=name, memory_total_mib=total,
                                memory_free_mib=total - used, memory_used_mib=used, utilization_pct=0))
    return Inventory(gpus=tuple(gpus), cpus=usable_cpus() if cpus is None else cpus,
                     note="" if gpus else f"{FAKE_ENV} has no GPU")


def _fake_item(item: str) -> tuple[int, str, int, int]:
    """(count, name, total MiB, used MiB) of one `[COUNTx][NAME:]TOTAL[:USED]` item."""
    count = 1
    m = re.match(r"(\d+)\s*x\s*(?=\S)", item, re.IGNORECASE)
    if m and not re.fullmatch(r"\d+(\.\d+)?\s*[a-zA-Z]*", item):  # "4x80GiB", not "80GiB"
        count, item = int(m[1]), item[m.end():]
    parts = [p.strip() for p in item.split(":")]
    if len(parts) == 3:
        name, total, used = parts
    elif len(parts) == 2 and _is_size(parts[0]):
        name, (total, used) = "", parts
    elif len(parts) == 2:
        (name, total), used = parts, "0"
    elif len(parts) == 1:
        name, total, used = "", parts[0], "0"
    else:
        raise ValueError(f"cannot read {item!r}")
    total_mib, used_mib = parse_mib(total), parse_mib(used)
    if used_mib > total_mib:
        raise ValueError(f"{item!r} uses more memory than it has")
    if count < 1 or not total_mib:
        raise ValueError(f"{item!r} has no GPU or no memory")
    return count, name or "Fake GPU", total_mib, used_mib


def _is_size(text: str) -> bool:
    try:
        parse_mib(text)
    except ValueError:
        return False
    return True


def parse_mib(text: str | int) -> int:
    """A memory size in MiB: 6144, "6144", "6GiB", "6 GB", "512MiB" (GB is read as GiB, as
    nvidia-smi does). Raises ValueError with what was expected."""
    return parse_size(text, bare=MIB, example="6GiB or 512MiB", what="a memory size") // MIB


def _mib_or_zero(text: str) -> int:
    value = _int_or_none(text)
    return 0 if value is None else value


def _int_or_none(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def _first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""
