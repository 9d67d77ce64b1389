"""The lstm and lstm-attention architectures (CPU torch), the registry without torch, and the
worker's torch hygiene (threads, OOM message)."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from hpt_cli.architectures import ArchitectureError, get, names
from hpt_cli.devices import worker as hygiene
from hpt_cli.spec import parse_spec
from hpt_cli.spec.model import DataSpec
from hpt_cli.trialrun import TrialPayload, run_trial

RANGE = ("2016-01-01", "2016-04-01")
SMALL = {"hidden_size": 8, "window": 7, "batch_size": 32}


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    get.cache_clear()
    monkeypatch.delenv("HPT_DEVICE", raising=False)
    monkeypatch.delenv("HPT_FAKE_GPUS", raising=False)
    yield
    get.cache_clear()


def payload(tmp_path, architecture, name="t", epochs=2, seed=0, **params) -> TrialPayload:
    return TrialPayload(trial_id=name, architecture=architecture, params=params, date_range=RANGE, seed=seed,
                        epochs=epochs, data=DataSpec(), artifact_dir=str(tmp_path / name))


def test_without_torch_the_registry_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails, as where it is not installed
    for name in ("lstm", "lstm-attention"):
        with pytest.raises(ArchitectureError) as info:
            get(name)
        assert str(info.value) == f"architecture '{name}' needs PyTorch: pip install 'hpt-cli[torch]'"
    assert get("mlp").name == "mlp"
    assert names()[:4] == ["mlp", "ridge", "lstm", "lstm-attention"]


def test_seed_spec_is_valid_and_default_spaces_parse():
    spec = parse_spec(Path("experiments/seed-lstm-attention-bundled.json").read_text())
    assert spec.architectures == ("lstm-attention",)
    torch = pytest.importorskip("torch")  # noqa: F841  (get() needs it installed)
    for name in ("lstm", "lstm-attention"):
        arch = get(name)
        text = json.dumps({"architecture": name, "date-range": [list(RANGE)], "parameters": arch.default_space})
        parse_spec(text)
        assert arch.lr_params == ("lr", "decay", "patience")
    assert {"num_of_attentions", "attention_hidden_layer_size", "attention_regularization"} <= set(
        get("lstm-attention").default_space)


@pytest.mark.parametrize("architecture, params", [
    ("lstm", SMALL),
    ("lstm-attention", {**SMALL, "num_of_attentions": 2, "attention_hidden_layer_size": 16,
                        "attention_regularization": 0.1}),
])
def test_trains_on_cpu_reproducibly_and_saves_the_model(tmp_path, architecture, params):
    torch = pytest.importorskip("torch")
    first = run_trial(payload(tmp_path, architecture, "a", seed=3, **params))
    again = run_trial(payload(tmp_path, architecture, "b", seed=3, **params))
    other = run_trial(payload(tmp_path, architecture, "c", seed=4, **params))
    for key in ("val_mse", "val_mae", "train_loss", "epochs_run", "best_epoch"):
        assert first[key] == again[key], key
    assert first["val_mse"] != other["val_mse"]
    assert first["epochs_run"] == 2.0 and math.isfinite(first["val_mse"]) and first["val_mae"] > 0
    assert first["train_time_s"] > 0
    assert ("attention_penalty" in first) == (architecture == "lstm-attention")

    folder = tmp_path / "a"
    state = torch.load(folder / "model.pt", weights_only=True)
    assert "lstm.weight_ih_l0" in state and state["lstm.weight_ih_l0"].shape[0] == 4 * 8
    assert ("w1.weight" in state) == (architecture == "lstm-attention")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["architecture"] == architecture and meta["settings"]["window"] == 7
    assert len(meta["x_mean"]) == meta["n_features"]
    with open(folder / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and all(float(r["train_loss"]) > 0 for r in rows)


def test_attention_penalty_shapes_the_weights(tmp_path):
    pytest.importorskip("torch")
    base = {**SMALL, "num_of_attentions": 3, "attention_hidden_layer_size": 8}
    low = run_trial(payload(tmp_path, "lstm-attention", "low", epochs=3, attention_regularization=0.0, **base))
    high = run_trial(payload(tmp_path, "lstm-attention", "high", epochs=3, attention_regularization=10.0, **base))
    assert high["attention_penalty"] < low["attention_penalty"]


def test_bad_parameters_and_too_short_ranges(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="0 <= dropout < 1 must hold"):
        run_trial(payload(tmp_path, "lstm", dropout=1.5))
    with pytest.raises(ValueError, match="num_of_attentions >= 1 must hold"):
        run_trial(payload(tmp_path, "lstm-attention", num_of_attentions=0))
    with pytest.raises(ValueError, match="no training sequences"):
        run_trial(payload(tmp_path, "lstm", window=400))


def test_a_fake_gpu_slot_trains_on_the_cpu(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("HPT_DEVICE", "cuda:0")
    monkeypatch.setenv("HPT_FAKE_GPUS", "4x80GiB")
    assert run_trial(payload(tmp_path, "tests.gpu_jobs:device_trial")) == {"on_cpu": 1.0}
    metrics = run_trial(payload(tmp_path, "lstm", epochs=1, **SMALL))
    assert math.isfinite(metrics["val_mse"])


@pytest.mark.parametrize("plain", [False, True])
def test_cuda_out_of_memory_becomes_one_clear_line(tmp_path, monkeypatch, capfd, plain):
    pytest.importorskip("torch")
    monkeypatch.setenv("HPT_DEVICE", "cuda:0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    with pytest.raises(RuntimeError) as info:
        run_trial(payload(tmp_path, "tests.gpu_jobs:oom_trial", plain=plain))
    assert str(info.value) == (
        "GPU out of memory on cuda:0 [GPU 2] (CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total "
        "capacity of 79.1 GiB of which 1.2 GiB is free.): lower the batch or model size, or give each trial more "
        "of a GPU (resources.gpus_per_trial)")
    assert info.value.__context__ is None  # the OOM's frames (and tensors) are not kept alive
    assert "Traceback" in capfd.readouterr().err  # the original, for the trial's log


def test_other_errors_pass_through_untouched(tmp_path):
    pytest.importorskip("torch")
    assert hygiene.oom_message(ValueError("CUDA out of memory"), "cpu") is None
    assert hygiene.oom_message(RuntimeError("shape mismatch"), "cpu") is None


def test_the_slot_sets_torch_threads_once(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setattr(hygiene, "_configured", set())
    monkeypatch.setenv("HPT_TORCH_THREADS", "1")
    try:
        run_trial(payload(tmp_path, "tests.gpu_jobs:device_trial"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_sequences_end_on_the_day_to_predict():
    from hpt_cli.architectures.lstm import sequences

    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    out = sequences(x, 3, range(2, 5))
    assert out.shape == (3, 3, 2)
    assert out[0].tolist() == x[0:3].tolist() and out[-1].tolist() == x[2:5].tolist()
    assert sequences(x, 3, range(5, 5)).shape == (0, 3, 2)
