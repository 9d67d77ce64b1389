"""Placement: slots and their environments from a fake inventory; then real worker processes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from hpt_cli.devices import Gpu, Inventory, describe, fake, notes, plan
from hpt_cli.devices.placement import THREAD_VARS
from hpt_cli.errors import HptError, SpecError
from hpt_cli.executors import Job, LocalExecutor
from hpt_cli.spec import parse_spec

FOUR = fake("4x80GiB", cpus=16)


def visible(slots) -> list[str]:
    return [s.env["CUDA_VISIBLE_DEVICES"] for s in slots]


def test_half_a_gpu_is_two_slots_per_device_each_seeing_one_gpu():
    slots = plan(FOUR, 0.5, cpus_per_trial=1)
    assert len(slots) == 8
    assert [s.name for s in slots] == [f"w{i}" for i in range(8)]
    assert Counter(visible(slots)) == {"0": 2, "1": 2, "2": 2, "3": 2}
    assert visible(slots)[:4] == ["0", "1", "2", "3"]  # round-robin: a cap still spreads over all GPUs
    for s in slots:
        assert "," not in s.env["CUDA_VISIBLE_DEVICES"] and len(s.gpu_indices) == 1
        assert s.device == "cuda:0" and s.env["HPT_DEVICE"] == "cuda:0"
        assert s.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
        assert s.label == f"gpu{s.gpu_indices[0]}" and s.share == 0.5
        assert s.env["HPT_GPU_MEMORY_MIB"] == "40960"
    assert describe(slots) == ["8 slots: gpu0 x2, gpu1 x2, gpu2 x2, gpu3 x2",
                               "each trial: 1/2 of a GPU, up to 40960 MiB, 1 CPU thread"]


def test_two_gpus_per_trial_get_disjoint_pairs():
    slots = plan(FOUR, 2)
    assert visible(slots) == ["0,1", "2,3"]
    assert [s.gpu_indices for s in slots] == [(0, 1), (2, 3)]
    assert [s.label for s in slots] == ["gpu0,1", "gpu2,3"] and {s.device for s in slots} == {"cuda:0"}
    assert "HPT_GPU_MEMORY_MIB" not in slots[0].env
    assert visible(plan(fake("3x80GiB", cpus=4), 2)) == ["0,1"]  # the odd GPU stays idle
    assert describe(slots)[1] == "each trial: 2 GPUs, 1 CPU thread"


@pytest.mark.parametrize("fraction", [0.125, 1 / 8, "1/8", "0.125"])
def test_an_eighth_is_eight_slots_per_gpu(fraction):
    slots = plan(FOUR, fraction)
    assert len(slots) == 32 and Counter(visible(slots)) == {"0": 8, "1": 8, "2": 8, "3": 8}
    assert slots[0].env["HPT_GPU_MEMORY_MIB"] == str(81920 // 8)


def test_one_gpu_per_trial():
    slots = plan(FOUR, 1, cpus_per_trial=4)
    assert visible(slots) == ["0", "1", "2", "3"] and describe(slots)[0] == "4 slots: gpu0, gpu1, gpu2, gpu3"
    for s in slots:
        assert all(s.env[var] == "4" for var in THREAD_VARS) and s.env["HPT_TORCH_THREADS"] == "4"


def test_a_third_passes_for_one_in_three():
    assert len(plan(fake("1x24GiB", cpus=4), 0.33)) == 3 and len(plan(fake("1x24GiB", cpus=4), 1 / 3)) == 3


def test_auto_admits_by_free_memory_and_leaves_other_processes_alone():
    inventory = Inventory(gpus=(
        Gpu(0, "GPU-a", "A100", 40960, 40960, 0, 0),
        Gpu(1, "GPU-b", "A100", 40960, 13000, 27960, 90),  # another process holds most of it
        Gpu(2, "GPU-c", "A100", 40960, 5000, 35960, 100),  # too little left for one trial
    ), cpus=64)
    slots = plan(inventory, "auto", gpu_memory_per_trial_mib=6144)
    assert Counter(s.label for s in slots) == {"gpu0": 6, "gpu1": 2}  # 40960 // 6144, 13000 // 6144
    assert all(s.env["HPT_GPU_MEMORY_MIB"] == "6144" for s in slots)
    assert [s.label for s in slots[:3]] == ["gpu0", "gpu1", "gpu0"]
    default = plan(inventory, "auto")  # 2048 MiB a trial, no cap on what each may take
    assert Counter(s.label for s in default) == {"gpu0": 20, "gpu1": 6, "gpu2": 2}
    assert "HPT_GPU_MEMORY_MIB" not in default[0].env
    assert len(plan(fake("1x80GiB", cpus=4), "auto")) == 4  # without workers: usable CPUs // cpus_per_trial
    assert len(plan(fake("1x80GiB", cpus=4), "auto", cpus_per_trial=2)) == 2
    with pytest.raises(HptError, match="no GPU has 50000 MiB free for a trial"):
        plan(inventory, "auto", gpu_memory_per_trial_mib=50000)


def test_memory_per_trial_also_bounds_fractions_and_whole_gpus():
    inventory = Inventory(gpus=(Gpu(0, "GPU-a", "A100", 40960, 40960, 0, 0),
                                Gpu(1, "GPU-b", "A100", 40960, 10000, 30960, 0)), cpus=8)
    slots = plan(inventory, 0.25, gpu_memory_per_trial_mib=8192)
    assert Counter(s.label for s in slots) == {"gpu0": 4, "gpu1": 1}
    assert [s.label for s in plan(inventory, 1, gpu_memory_per_trial_mib=20000)] == ["gpu0"]
    with pytest.raises(HptError, match="gpus_per_trial is 2 but this machine has 1 with 20000 MiB free GPU"):
        plan(inventory, 2, gpu_memory_per_trial_mib=20000)


def test_workers_cap_the_slots_and_keep_them_spread():
    slots = plan(FOUR, 0.5, workers=4)
    assert visible(slots) == ["0", "1", "2", "3"]
    assert visible(plan(FOUR, 0.5, workers=6)) == ["0", "1", "2", "3", "0", "1"]
    assert len(plan(FOUR, 0.5, workers=100)) == 8  # a cap, never more than the GPUs allow


def test_cpu_slots_see_no_gpu():
    slots = plan(FOUR, 0, cpus_per_trial=4)
    assert len(slots) == 4  # 16 CPUs // 4, GPUs present or not
    for s in slots:
        assert s.env["CUDA_VISIBLE_DEVICES"] == "" and s.env["HPT_DEVICE"] == "cpu" and s.device == "cpu"
        assert s.gpu_indices == () and s.label == "cpu" and s.env["OMP_NUM_THREADS"] == "4"
    assert len(plan(FOUR, 0, workers=3)) == 3
    assert len(plan(Inventory(gpus=(), cpus=1), 0, cpus_per_trial=4)) == 1
    assert describe(slots) == ["4 slots: cpu x4", "each trial: 4 CPU threads, no GPU"]


@pytest.mark.parametrize("gpus_per_trial, message", [
    (0.3, "gpus_per_trial 0.3: a share of a GPU must be 1/k for a whole k (0.5, 0.25, 0.125, ...); 0.3 is 1/3.33"),
    (0.75, "a share of a GPU must be 1/k"),
    (1.5, "more than one GPU per trial must be a whole number"),
    (-1, "expected a number >= 0 or 'auto'"),
    ("most", "expected a number such as 0.5 or 1/8, or 'auto'"),
])
def test_bad_values_raise_value_error(gpus_per_trial, message):
    with pytest.raises(ValueError) as info:
        plan(FOUR, gpus_per_trial)
    assert message in str(info.value)


def test_bad_resources_raise_value_error():
    with pytest.raises(ValueError, match="cpus_per_trial must be an integer >= 1"):
        plan(FOUR, 1, cpus_per_trial=0)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        plan(FOUR, 1, workers=0)
    with pytest.raises(ValueError, match="gpu_memory_per_trial must be a positive number of MiB"):
        plan(FOUR, 0.5, gpu_memory_per_trial_mib=0)


def test_memory_alone_is_auto_by_that_memory():
    # review #2: gpu_memory_per_trial with gpus_per_trial 0 ran every trial on a CPU slot, silently
    alone = plan(FOUR, 0, gpu_memory_per_trial_mib=6144)
    assert [(s.label, s.env) for s in alone] == [(s.label, s.env) for s in plan(FOUR, "auto",
                                                                               gpu_memory_per_trial_mib=6144)]
    assert len(alone) == 16 and {s.env["HPT_GPU_MEMORY_MIB"] for s in alone} == {"6144"}
    assert describe(alone)[1] == "each trial: 6144 MiB of a GPU (by free memory, capped there), 1 CPU thread"
    with pytest.raises(HptError, match="gpu_memory_per_trial is 6144 MiB .a GPU.s free memory decides the packing. "
                                       "but no GPU was found"):
        plan(Inventory(gpus=(), cpus=4), 0, gpu_memory_per_trial_mib=6144)


def test_review_findings_on_full_gpus_unknown_free_memory_and_dask():
    full = fake("1x80GiB:80GiB", cpus=4)  # other processes hold all of it
    with pytest.raises(HptError) as info:
        plan(full, 0.5)
    assert str(info.value).startswith("resources.gpus_per_trial 0.5: every GPU's memory is in use by other processes")
    unknown = Inventory(gpus=(Gpu(0, "GPU-a", "H100", 81559, 0, 0, None),), cpus=4)  # nvidia-smi said [N/A]
    assert len(plan(unknown, 0.5, gpu_memory_per_trial_mib=6144)) == 2  # the total counts, as without memory
    assert len(plan(unknown, "auto", gpu_memory_per_trial_mib=6144)) == 4  # 4 CPUs bound the workers
    with pytest.raises(SpecError, match="resources.gpu_memory_per_trial: gpu_memory_per_trial without a share packs"):
        parse_spec(json.dumps({"architecture": "branin", "executor": "dask",
                               "resources": {"gpu_memory_per_trial": "6GiB"}}))


def test_a_gpu_asked_for_on_a_machine_without_one_is_one_clear_line():
    none = Inventory(gpus=(), cpus=4, note="nvidia-smi not on PATH")
    with pytest.raises(HptError) as info:
        plan(none, 0.5)
    assert str(info.value) == ("resources.gpus_per_trial is 0.5 but no GPU was found (nvidia-smi not on PATH); "
                               "use --gpus none to run on CPUs")
    with pytest.raises(HptError, match="gpus_per_trial is auto but no GPU was found"):
        plan(Inventory(gpus=(), cpus=4), "auto")
    with pytest.raises(HptError, match=r"gpus_per_trial is 4 but this machine has 2 GPUs to give"):
        plan(fake("2x80GiB", cpus=4), 4)


def test_a_share_is_capped_by_free_memory_too():
    # review #8: total // k ignored memory other processes hold; each slot gets min(total, free) // k
    mixed = fake("H100:80GiB:30GiB,A100:40GiB", cpus=16)
    slots = plan(mixed, 0.5)
    assert [(s.label, s.memory_mib) for s in slots] == [("gpu0", 25600), ("gpu1", 20480)] * 2
    assert [s.env["HPT_GPU_MEMORY_MIB"] for s in slots[:2]] == ["25600", "20480"]
    unknown = Inventory(gpus=(Gpu(0, "GPU-a", "H100", 81559, 0, 0, None),), cpus=4)  # nvidia-smi [N/A]
    assert [s.memory_mib for s in plan(unknown, 0.5)] == [40779, 40779]
    full = Inventory(gpus=(Gpu(0, "GPU-a", "A", 40960, 0, 40960, 100), Gpu(1, "GPU-b", "A", 40960, 1000, 39960, 0)),
                     cpus=4)
    assert [(s.label, s.memory_mib) for s in plan(full, 0.25)] == [("gpu1", 250)] * 4  # a full GPU gets no slot


def test_describe_lists_caps_per_gpu_and_what_auto_admits():
    # review #9: only the first slot was described ("up to 40779 MiB"; "1/40 of a GPU" for auto)
    mixed = fake("H100:81559:1024,A100:40960:30000", cpus=16)
    assert describe(plan(mixed, 0.5, cpus_per_trial=2))[1] == (
        "each trial: 1/2 of a GPU (up to 40267 MiB on gpu0, 5480 MiB on gpu1), 2 CPU threads")
    assert describe(plan(fake("4x80GiB,40GiB", cpus=16), 1 / 4))[1] == (
        "each trial: 1/4 of a GPU (up to 20480 MiB on gpu0, gpu1, gpu2, gpu3, 10240 MiB on gpu4), 1 CPU thread")
    assert describe(plan(fake("2xH100:80GiB:30GiB", cpus=16), "auto"))[1] == (
        "each trial: 2048 MiB of a GPU (by free memory), 1 CPU thread")
    assert describe(plan(fake("2x81559", cpus=16), "auto", gpu_memory_per_trial_mib=20480))[1] == (
        "each trial: 20480 MiB of a GPU (by free memory, capped there), 1 CPU thread")
    assert describe(plan(FOUR, 1, gpu_memory_per_trial_mib=6144))[1] == "each trial: a GPU, up to 6144 MiB, 1 CPU thread"


def test_notes_say_when_threads_outnumber_the_usable_cpus():
    # review #7: cpus_per_trial above the affinity mask, and GPU slots x threads above it, were silent
    one = Inventory(gpus=(), cpus=1)
    assert notes(plan(one, 0, cpus_per_trial=3), 1) == [
        "note: cpus_per_trial is 3 but this process may use only 1 usable CPU (its affinity mask), which each "
        "trial's 3 threads share; set --cpus-per-trial (or resources.cpus_per_trial) to at most 1"]
    two = fake("4x80GiB", cpus=2)
    assert notes(plan(two, 0.5, cpus_per_trial=2), 2) == [
        "note: 8 GPU slots x 2 CPU threads = 16 threads on 2 usable CPUs, so trials share them; set -j 1 to keep "
        "within them"]
    assert notes(plan(two, 1, workers=2, cpus_per_trial=2), 2)[0].endswith(
        "set -j 1 or --cpus-per-trial 1 to keep within them")
    assert notes(plan(two, 1, workers=2), 2) == [] and notes(plan(two, 0), 2) == []
    assert notes(plan(fake("4x80GiB", cpus=16), 0.5, cpus_per_trial=2), 16) == []


@pytest.mark.slow
def test_real_workers_two_per_device_never_more():
    """8 warm workers from plan(4 fake GPUs, 0.5): 8 sleeping jobs overlap, each worker sees one GPU."""
    slots = plan(FOUR, 0.5)
    results = []
    with LocalExecutor(len(slots), slot_env=[s.env for s in slots]) as ex:
        for i in range(8):
            ex.submit(Job(key=f"j{i}", func="tests.gpu_jobs:report_slot", payload={"sleep": 1.0}, timeout=60.0))
        while len(results) < 8:
            results.extend(ex.wait(timeout=30))
    assert [r.status for r in results] == ["ok"] * 8, [r.error for r in results]
    values = [r.value for r in results]
    assert Counter(v["CUDA_VISIBLE_DEVICES"] for v in values) == {"0": 2, "1": 2, "2": 2, "3": 2}
    assert {v["HPT_DEVICE"] for v in values} == {"cuda:0"} and {v["OMP_NUM_THREADS"] for v in values} == {"1"}
    assert len({v["pid"] for v in values}) == 8
    assert max(v["started"] for v in values) < min(v["ended"] for v in values)  # all 8 ran at once
    by_slot = {r.worker: r.value["CUDA_VISIBLE_DEVICES"] for r in results}
    assert by_slot == {s.name: s.env["CUDA_VISIBLE_DEVICES"] for s in slots}
