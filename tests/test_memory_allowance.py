"""The retry alone on a GPU runs with no memory cap: hpt_cli.devices.worker.whole_gpu lifts the
worker's HPT_GPU_MEMORY_MIB for one trial (os.environ and torch's per-process memory fraction, the
one place that sets it), then puts it back. A fake torch stands in for CUDA."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from hpt_cli.devices import worker as hygiene
from hpt_cli.trialrun import TrialPayload, run_trial

GIB = 1024 ** 3
VAR = "HPT_GPU_MEMORY_MIB"


def fake_torch(fractions: list[float], cuda: bool = True):
    def set_fraction(fraction, device):
        assert device == 0
        fractions.append(fraction)

    return SimpleNamespace(
        set_num_threads=lambda n: None,
        cuda=SimpleNamespace(is_available=lambda: cuda,
                             get_device_properties=lambda i: SimpleNamespace(total_memory=80 * GIB),
                             set_per_process_memory_fraction=set_fraction))


@pytest.fixture
def gpu_slot(monkeypatch):
    """A worker on a share of cuda:0 with a 40960 MiB cap, nothing configured yet."""
    monkeypatch.setattr(hygiene, "_configured", set())
    monkeypatch.setenv("HPT_DEVICE", "cuda:0")
    monkeypatch.setenv(VAR, "40960")
    monkeypatch.delenv("HPT_FAKE_GPUS", raising=False)
    monkeypatch.delenv("HPT_TORCH_THREADS", raising=False)
    return monkeypatch


def test_the_cap_is_lifted_for_one_trial_and_put_back(gpu_slot):
    fractions: list[float] = []
    gpu_slot.setitem(sys.modules, "torch", fake_torch(fractions))
    hygiene.configure_torch()
    assert fractions == [0.5]
    with hygiene.whole_gpu():
        assert VAR not in hygiene.os.environ
        hygiene.configure_torch()  # as run_trial calls it: the lifted cap stays lifted
        assert fractions == [0.5, 1.0]
    assert hygiene.os.environ[VAR] == "40960" and fractions == [0.5, 1.0, 0.5]
    hygiene.configure_torch()  # the next trial: once per worker, already done
    assert fractions == [0.5, 1.0, 0.5]


def test_torch_imported_during_the_lifted_trial_gets_the_cap_after_it(gpu_slot):
    fractions: list[float] = []
    gpu_slot.delitem(sys.modules, "torch", raising=False)
    with hygiene.whole_gpu():
        gpu_slot.setitem(sys.modules, "torch", fake_torch(fractions))  # the trial imports torch
        hygiene.configure_torch()
        assert fractions == [] and VAR not in hygiene.os.environ
    assert fractions == [0.5] and hygiene.os.environ[VAR] == "40960"


def test_nothing_to_lift(gpu_slot):
    fractions: list[float] = []
    gpu_slot.setitem(sys.modules, "torch", fake_torch(fractions))
    with hygiene.whole_gpu(False):  # an ordinary trial
        assert hygiene.os.environ[VAR] == "40960"
    gpu_slot.delenv(VAR)
    with hygiene.whole_gpu():  # a worker with no cap
        assert VAR not in hygiene.os.environ
    assert VAR not in hygiene.os.environ and fractions == []


@pytest.mark.parametrize("device, cuda", [("cpu", True), ("cuda:0", False)])
def test_no_cuda_no_fraction(gpu_slot, device, cuda):
    fractions: list[float] = []
    gpu_slot.setenv("HPT_DEVICE", device)
    gpu_slot.setitem(sys.modules, "torch", fake_torch(fractions, cuda=cuda))
    hygiene.configure_torch()
    with hygiene.whole_gpu():
        assert VAR not in hygiene.os.environ
    assert hygiene.os.environ[VAR] == "40960" and fractions == []


def payload(tmp_path, whole_gpu: bool) -> TrialPayload:
    return TrialPayload(trial_id="t", architecture="tests.oom_archs:report_cap", params={},
                        date_range=("2015-01-01", "2015-02-01"), seed=0, epochs=None, data=None,
                        artifact_dir=str(tmp_path), whole_gpu=whole_gpu)


def test_run_trial_on_the_cpu_with_real_torch(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setattr(hygiene, "_configured", set())
    monkeypatch.setenv(VAR, "40960")
    monkeypatch.setenv("HPT_FAKE_GPUS", "1x80GiB")
    monkeypatch.setenv("HPT_DEVICE", "cuda:0")  # a fake inventory's slot: the trial runs on the CPU
    assert run_trial(payload(tmp_path, True))["cap"] == "none"
    assert hygiene.os.environ[VAR] == "40960"
    assert run_trial(payload(tmp_path, False))["cap"] == "40960"
