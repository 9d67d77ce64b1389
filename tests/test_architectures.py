"""The registry and the built-in architectures, on a real slice of the bundled data."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest

from hpt_cli import architectures
from hpt_cli.architectures import Architecture, ArchitectureError, get, names
from hpt_cli.architectures.features import DEFAULT_LAGS, make_features, parse_lags
from hpt_cli.spec import parse_spec
from hpt_cli.spec.model import DataSpec
from hpt_cli.trialrun import TrialPayload, check_metrics, run_trial

RANGE = ("2014-01-01", "2014-04-01")


def toy_train(params, ctx):
    """A toy trial: the metric is a function of the parameters."""
    ctx.report(epoch=1, loss=params["x"])
    return {"val_mse": (params["x"] - 3) ** 2, "rows": len(ctx.data.train), "ok": True}


TOY = Architecture(name="toy", train=toy_train, default_space={"x": [1, 2]}, metrics=("val_mse",))


def payload(tmp_path, architecture, name="t", epochs=None, seed=0, **params) -> TrialPayload:
    return TrialPayload(trial_id=name, architecture=architecture, params=params, date_range=RANGE, seed=seed,
                        epochs=epochs, data=DataSpec(), artifact_dir=str(tmp_path / name))


pytestmark = pytest.mark.usefixtures("fresh_registry")  # tests/conftest.py


# --- registry -------------------------------------------------------------------------------------

def test_builtins_are_listed_and_resolve():
    assert names()[:2] == ["mlp", "ridge"]
    assert "command" not in names()
    assert get("ridge").name == "ridge" and get("mlp").name == "mlp"
    assert get("mlp").lr_params == ("lr", "decay", "patience")
    assert set(get("mlp").default_space) == {"lr", "decay", "patience", "hidden", "batch_size", "l2"}
    assert set(get("ridge").default_space) == {"alpha"}
    assert get("command").name == "command"


@pytest.mark.parametrize("name", ["mlp", "ridge"])
def test_default_spaces_are_valid_spec_parameters(name):
    text = json.dumps({"architecture": name, "date-range": [list(RANGE)], "parameters": get(name).default_space})
    spec = parse_spec(text)
    assert [n for n, _ in spec.parameters] == list(get(name).default_space)


def test_an_unknown_name_suggests_a_close_one():
    with pytest.raises(ArchitectureError) as err:
        get("mpl")
    assert str(err.value) == ("unknown architecture 'mpl'; did you mean 'mlp'? "
                              "(known: mlp, ridge, lstm, lstm-attention, branin, hartmann6; "
                              "or give 'package.module:function')")


def test_an_unknown_name_without_a_close_one():
    with pytest.raises(ArchitectureError) as err:
        get("transformer")
    assert str(err.value) == ("unknown architecture 'transformer' (known: mlp, ridge, lstm, lstm-attention, "
                              "branin, hartmann6; "
                              "or give 'package.module:function')")


def test_a_dotted_name_suggests_the_colon_form():
    with pytest.raises(ArchitectureError, match=r"did you mean 'models\.lstm:train'\?"):
        get("models.lstm.train")


def test_a_module_that_cannot_be_imported():
    with pytest.raises(ArchitectureError) as err:
        get("pkg.mod:fn")
    assert str(err.value) == ("cannot import 'pkg.mod' for architecture 'pkg.mod:fn': No module named 'pkg'; run hpt "
                              "from the folder that holds pkg, or put that folder on PYTHONPATH")


def test_a_missing_function_suggests_a_close_one():
    with pytest.raises(ArchitectureError) as err:
        get(f"{__name__}:toy_trian")
    assert str(err.value) == (f"module {__name__!r} ({__file__}) has no attribute 'toy_trian' (architecture "
                              f"'{__name__}:toy_trian'); did you mean '{__name__}:toy_train'?")


def test_module_function_resolves_to_an_architecture():
    arch = get(f"{__name__}:toy_train")
    assert arch.train is toy_train
    assert arch.name == f"{__name__}:toy_train"
    assert arch.default_space == {} and arch.metrics == ()
    assert arch.description == "A toy trial: the metric is a function of the parameters."
    assert get(f"{__name__}:TOY") is TOY


def test_a_module_attribute_that_is_not_callable():
    with pytest.raises(ArchitectureError, match=r"is a tuple, not a function train\(params, ctx\)"):
        get(f"{__name__}:RANGE")


def test_entry_points_are_found(tmp_path, monkeypatch):
    (tmp_path / "hpt_demo_plugin.py").write_text(
        "def train(params, ctx):\n    return {'val_mse': params['x'] * 2}\n")
    dist = tmp_path / "hpt_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hpt-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hpt.architectures]\ndemo = hpt_demo_plugin:train\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "demo" in names()
    arch = get("demo")
    assert arch.name == "demo" and arch.train({"x": 2}, None) == {"val_mse": 4}


def test_run_trial_with_a_module_function(tmp_path):
    out = run_trial(payload(tmp_path, f"{__name__}:toy_train", x=5))
    assert out == {"val_mse": 4.0, "rows": 90.0, "ok": True}  # a bool is kept as it is (results.csv: extra)
    assert (tmp_path / "t" / "curve.csv").read_text().splitlines() == ["epoch,loss", "1,5"]


def test_check_metrics_names_a_bad_value():
    assert check_metrics({"a": np.float32(0.5), "b": np.int64(2), "c": float("nan")})["b"] == 2.0
    assert check_metrics({"val_mse": 1.0, "note": "hi", "done": np.bool_(True)}) == {
        "val_mse": 1.0, "note": "hi", "done": True}  # strings and bools are kept (results.csv: extra)
    with pytest.raises(TypeError, match=r"^metric 'arr' is a numpy ndarray of shape \(2,\); a metric must be"):
        check_metrics({"val_mse": 1.0, "arr": np.array([1.0, 2.0])})
    with pytest.raises(TypeError, match="must return a dict"):
        check_metrics([1.0])


# --- features -------------------------------------------------------------------------------------

def test_lags_parameter():
    assert parse_lags(None) == DEFAULT_LAGS == (1, 2, 3, 4, 5, 6, 7, 14)
    assert parse_lags(3) == (1, 2, 3)
    assert parse_lags([14, 7]) == (7, 14)
    with pytest.raises(ValueError, match="lags"):
        parse_lags("7")


def test_features_use_training_statistics_only_and_keep_every_validation_row():
    days = pd.date_range("2020-01-01", periods=30, freq="D")
    frame = pd.DataFrame({"date": days, "y": np.arange(30.0), "x": np.r_[np.zeros(20), np.full(10, 1000.0)],
                          "label": ["a"] * 30})
    train, val = frame.iloc[:20].reset_index(drop=True), frame.iloc[20:].reset_index(drop=True)
    f = make_features(train, val, "y", "date", lags=[1, 2])
    assert f.names == ("y_lag1", "y_lag2", "x")  # the text column is left out
    assert len(f.y_train) == 18 and len(f.y_val) == 10  # lags reach into the training rows
    assert list(f.y_val) == list(np.arange(20.0, 30.0))
    lag1 = np.arange(1.0, 19.0)  # the raw lag-1 values of the kept training rows
    assert f.x_mean[0] == pytest.approx(lag1.mean()) and f.x_std[0] == pytest.approx(lag1.std())
    assert f.x_mean[2] == 0.0 and f.x_std[2] == 1.0  # constant in training: no leak, no division by 0
    assert f.x_val[0, 0] == pytest.approx((19.0 - lag1.mean()) / lag1.std())
    assert np.all(f.x_val[:, 2] == 1000.0)


# --- ridge and mlp on real data ---------------------------------------------------------------------

def test_ridge_reports_finite_metrics_and_saves_the_model(tmp_path):
    out = run_trial(payload(tmp_path, "ridge", alpha=1.0))
    assert set(out) == set(get("ridge").metrics)
    assert all(math.isfinite(v) for v in out.values())
    assert out["epochs_run"] == 1.0
    assert out["val_mse"] < 20  # ridership is ~20 (thousands); a useful fit
    model = np.load(tmp_path / "t" / "model.npz")
    assert model["coef"].shape == (len(model["feature_names"]),)
    assert model["feature_names"][0] == "ridership_lag1"
    assert (tmp_path / "t" / "curve.csv").is_file()


def test_ridge_alpha_matters(tmp_path):
    small = run_trial(payload(tmp_path, "ridge", "a", alpha=1e-3))
    large = run_trial(payload(tmp_path, "ridge", "b", alpha=1e3))
    assert small["val_mse"] != large["val_mse"]
    assert small["train_loss"] < large["train_loss"]


def test_mlp_is_finite_deterministic_and_writes_its_curve(tmp_path):
    first = run_trial(payload(tmp_path, "mlp", "a", epochs=20, seed=3, lr=3e-3, patience=100))
    again = run_trial(payload(tmp_path, "mlp", "b", epochs=20, seed=3, lr=3e-3, patience=100))
    assert set(first) == set(get("mlp").metrics)
    for key in ("val_mse", "val_mae", "train_loss", "epochs_run", "best_epoch"):
        assert first[key] == again[key]
        assert math.isfinite(first[key])
    assert first["epochs_run"] == 20.0  # ctx.epochs overrides the default 50
    with open(tmp_path / "a" / "curve.csv", newline="") as f:
        curve = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in curve] == list(range(1, 21))
    assert set(curve[0]) == {"epoch", "train_loss", "val_mse", "lr"}
    best = int(first["best_epoch"])
    assert float(curve[best - 1]["val_mse"]) == pytest.approx(first["val_mse"])  # best-epoch weights kept
    model = np.load(tmp_path / "a" / "model.npz")
    assert model["w0"].shape == (len(model["feature_names"]), 64) and list(model["hidden"]) == [64]


def test_mlp_seed_lr_and_hidden_change_the_result(tmp_path):
    base = dict(epochs=10, patience=0)
    a = run_trial(payload(tmp_path, "mlp", "a", lr=1e-3, **base))
    b = run_trial(payload(tmp_path, "mlp", "b", lr=1e-2, **base))
    c = run_trial(payload(tmp_path, "mlp", "c", lr=1e-3, hidden=[32, 16], **base))
    d = run_trial(payload(tmp_path, "mlp", "d", lr=1e-3, seed=1, **base))
    assert len({a["val_mse"], b["val_mse"], c["val_mse"], d["val_mse"]}) == 4


def test_mlp_early_stopping_and_decay(tmp_path):
    out = run_trial(payload(tmp_path, "mlp", epochs=200, lr=3e-2, patience=2, decay=0.9))
    assert out["epochs_run"] < 200
    assert out["epochs_run"] - out["best_epoch"] == 2
    with open(tmp_path / "t" / "curve.csv", newline="") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    assert lrs[1] == pytest.approx(lrs[0] * 0.9)


@pytest.mark.parametrize("params, message", [
    ({"lr": -1}, "lr > 0 must hold, got lr=-1"),
    ({"hidden": "64"}, "hidden: expected a list of layer widths such as [64, 32], got '64'"),
    ({"batch_size": 0}, "batch_size >= 1 must hold (an integer), got batch_size=0"),
])
def test_mlp_bad_parameters_say_what_must_hold(tmp_path, params, message):
    with pytest.raises(ValueError) as err:
        run_trial(payload(tmp_path, "mlp", epochs=1, **params))
    assert str(err.value) == message


def test_architectures_module_exports():
    assert architectures.ENTRY_POINT_GROUP == "hpt.architectures"
    assert sys.modules["hpt_cli.architectures.mlp"].ARCHITECTURE is get("mlp")


# --- the user's module and plugins (review-data #3, #13, #15) --------------------------------------

@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """tmp_path as the working folder, not yet on sys.path (as for the hpt command); the modules
    imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if str(tmp_path) in str(getattr(sys.modules[name], "__file__", None)):
            del sys.modules[name]


TRAIN = "def train(params, ctx):\n    return {'val_mse': 0.5}\n"


def test_the_working_folder_comes_first_as_with_python_m(workdir):
    # a user's tabnanny.py was shadowed by the standard library's: "has no attribute 'train'"
    (workdir / "tabnanny.py").write_text(TRAIN)
    arch = get("tabnanny:train")
    assert arch.train({}, None) == {"val_mse": 0.5}
    assert sys.path[0] == str(workdir)


def test_a_missing_attribute_names_the_file_and_a_shadowed_one_of_the_working_folder(workdir):
    (workdir / "json.py").write_text(TRAIN)  # json is imported already: the standard library's comes back
    with pytest.raises(ArchitectureError) as err:
        get("json:train")
    assert str(err.value).startswith(f"module 'json' ({json.__file__}, not ./json.py: a module of that name was "
                                     f"imported first; rename json.py) has no attribute 'train'")


@pytest.mark.parametrize("name, body, exited", [  # argparse's last line is quoted, its usage lines held back
    ("m_argparse", "import argparse\nargparse.ArgumentParser().parse_args(['--no-such-option'])\n",
     "sys.exit(2) ('unrecognized arguments: --no-such-option')"),
    ("m_sys_exit", "import sys\nsys.exit('this module needs a GPU')\n", "sys.exit('this module needs a GPU')"),
])
def test_a_module_that_exits_at_import_is_an_architecture_error(workdir, name, body, exited, capsys):
    (workdir / f"{name}.py").write_text(body + TRAIN)
    with pytest.raises(ArchitectureError) as err:
        get(f"{name}:train")
    assert str(err.value) == (f"importing '{name}' for architecture '{name}:train' called {exited}: it runs "
                              f"argparse or sys.exit at import time; put that code under "
                              f"`if __name__ == \"__main__\":`")
    assert capsys.readouterr() == ("", "")


def test_a_module_that_exits_at_import_fails_the_trial_in_a_worker(workdir):
    (workdir / "m_exit_worker.py").write_text("import sys\nsys.exit(3)\n" + TRAIN)
    with pytest.raises(ArchitectureError, match=r"^importing 'm_exit_worker' .* called sys.exit\(3\)"):
        run_trial(payload(workdir, "m_exit_worker:train"))


def test_ctrl_c_while_importing_a_module_still_interrupts(workdir):
    (workdir / "m_ctrl_c.py").write_text("raise KeyboardInterrupt\n" + TRAIN)
    with pytest.raises(KeyboardInterrupt):
        get("m_ctrl_c:train")


def plugin(tmp_path, monkeypatch, entries: str, module: str) -> None:
    """An installed package hpt_plug (module hpt_plug.py) with these hpt.architectures entry points."""
    (tmp_path / "hpt_plug.py").write_text(module)
    dist = tmp_path / "hpt_plug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hpt-plug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hpt.architectures]\n" + entries)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_plugin_that_exits_at_import_is_an_architecture_error(workdir, monkeypatch):
    plugin(workdir, monkeypatch, "plug_exit = hpt_plug:train\n", "import sys\nsys.exit(2)\n" + TRAIN)
    with pytest.raises(ArchitectureError, match=r"^importing 'hpt_plug' for architecture 'plug_exit' called "
                                                r"sys.exit\(2\)"):
        get("plug_exit")


def test_a_plugin_named_like_a_built_in_is_said_once_and_the_built_in_wins(workdir, monkeypatch, capsys):
    plugin(workdir, monkeypatch, "ridge = hpt_plug:train\nmine = hpt_plug:train\n", TRAIN)
    architectures.say_shadowed.cache_clear()
    try:
        assert get("ridge").name == "ridge"  # the built-in
        assert names().count("ridge") == 1 and "mine" in names()
    finally:
        architectures.say_shadowed.cache_clear()
    assert capsys.readouterr().err == (
        "note: entry point 'ridge' = 'hpt_plug:train' (group hpt.architectures, package hpt-plug) is never used: "
        "the built-in 'ridge' wins; register it under another name\n")
