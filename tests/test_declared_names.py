"""Built-in architectures declare the parameter names they read and the metrics they report, and
the preflight (`hpt run`, `hpt validate`) refuses a spec parameter none of its architectures reads
or an objective none of them reports: one line each, with the JSON path and the nearest name
(review 2, findings 1 and 2)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from hpt_cli.architectures import Architecture, get
from hpt_cli.cli import cli
from hpt_cli.context import TrialContext, TrialData
from hpt_cli.dates import DateRange
from hpt_cli.errors import ExitCode, SpecError
from hpt_cli.runner import RunOptions, preflight, resolve_architectures, run_spec
from hpt_cli.spec import parse_spec
from hpt_cli.spec.model import DataSpec

TODAY = date(2026, 11, 22)
RANGE = [["2016-01-01", "2016-04-01"]]
MLP = "batch_size, decay, epochs, hidden, l2, lags, lr, patience"
MLP_METRICS = "val_mse, val_mae, train_loss, epochs_run, train_time_s, best_epoch"


pytestmark = pytest.mark.usefixtures("fresh_registry")  # tests/conftest.py


def spec_of(**body):
    body.setdefault("date-range", RANGE)
    return parse_spec(json.dumps(body), today=TODAY)


def refused(**body) -> list[str]:
    with pytest.raises(SpecError) as info:
        resolve_architectures(spec_of(**body))
    assert info.value.exit_code == ExitCode.USAGE
    return str(info.value).splitlines()


# -- what each built-in reads ---------------------------------------------------------------------
class Recording(dict):
    """A trial's params that note every name the architecture looks up."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def _context(tmp_path) -> TrialContext:
    spec, rng = DataSpec(), DateRange.from_json(RANGE[0])

    def load():
        from hpt_cli.datasets import load_dataset

        return load_dataset(spec).split(rng, spec.validation)

    data = TrialData(target=spec.target, date_column=spec.date_column, loader=load)
    return TrialContext(trial_id="t", params={}, date_range=rng, seed=0, artifact_dir=tmp_path, data=data)


@pytest.mark.parametrize("name, given", [
    ("ridge", {}),
    ("mlp", {"epochs": 1}),  # read only without ctx.epochs (which wins)
    ("lstm", {"epochs": 1, "hidden_size": 4, "window": 7}),
    ("lstm-attention", {"epochs": 1, "hidden_size": 4, "window": 7}),
    ("branin", {"x1": 1.0, "x2": 2.0}),
    ("hartmann6", {f"x{i}": 0.5 for i in range(1, 7)}),
])
def test_each_builtin_declares_exactly_the_names_it_reads_and_the_metrics_it_reports(tmp_path, name, given):
    if name.startswith("lstm"):
        pytest.importorskip("torch")
    arch = get(name)
    params = Recording(given)
    out = arch.train(params, _context(tmp_path))
    assert arch.parameters == params.read
    assert set(arch.default_space) <= arch.parameters
    assert set(out) == set(arch.metrics)


def test_module_functions_commands_and_plain_plugins_declare_nothing():
    assert get("tests.archs:noop").parameters is None and get("tests.archs:noop").metrics == ()
    assert get("command").parameters is None
    assert Architecture(name="p", train=lambda p, c: {}).parameters is None


# -- the preflight ---------------------------------------------------------------------------------
def test_a_misspelled_parameter_of_ridge_or_mlp_is_refused():
    assert refused(architecture="ridge", parameters={"alpah": [1, 2]}) == [
        "parameters.alpah: ridge has no parameter 'alpah'; did you mean 'alpha'? (its parameters: alpha, lags)"]
    assert refused(architecture="mlp", parameters={"lr": [0.01], "hiden": [[32]]}) == [
        f"parameters.hiden: mlp has no parameter 'hiden'; did you mean 'hidden'? (its parameters: {MLP})"]


def test_a_name_with_nothing_close_lists_the_parameters():
    assert refused(architecture="branin", parameters={"x1": 1, "x2": 2, "zzz": 3}) == [
        "parameters.zzz: branin has no parameter 'zzz' (its parameters: delay_s, x1, x2)"]


def test_plain_lstm_has_no_attention_parameters():
    assert refused(architecture="lstm", parameters={"num_of_attentions": [1, 2]}) == [
        "parameters.num_of_attentions: lstm has no parameter 'num_of_attentions' (its parameters: batch_size, "
        "decay, dropout, epochs, hidden_size, l2, lags, lr, num_layers, patience, window)"]
    resolve_architectures(spec_of(architecture="lstm-attention", parameters={"num_of_attentions": [1, 2]}))


def test_every_problem_at_once_with_the_objective():
    assert refused(architecture="mlp", parameters={"lrr": [0.1], "hiden": [[8]]},
                   objective={"metric": "val_mes"}) == [
        f"parameters.lrr: mlp has no parameter 'lrr'; did you mean 'lr'? (its parameters: {MLP})",
        f"parameters.hiden: mlp has no parameter 'hiden'; did you mean 'hidden'? (its parameters: {MLP})",
        f"objective.metric: 'val_mes' is not a metric mlp reports; did you mean 'val_mse'? (it reports: {MLP_METRICS})",
    ]


def test_per_architecture_blocks_are_checked_against_their_own_architecture():
    blocks = {"ridge": {"alpha": [1], "lr": [0.1]}, "mlp": {"lr": [0.1], "alpha": [1]}}
    assert refused(architecture=["ridge", "mlp"], parameters=blocks) == [
        "parameters.ridge.lr: ridge has no parameter 'lr' (its parameters: alpha, lags)",
        f"parameters.mlp.alpha: mlp has no parameter 'alpha' (its parameters: {MLP})",
    ]


def test_a_shared_block_needs_one_architecture_that_reads_each_name():
    ok = spec_of(architecture=["ridge", "mlp"], parameters={"alpha": [1, 10], "lr": [0.1], "lags": 7})
    resolve_architectures(ok)  # alpha: ridge's, lr: mlp's, lags: both
    assert refused(architecture=["ridge", "mlp"], parameters={"alpah": [1], "lr": [0.1]}) == [
        "parameters.alpah: neither ridge nor mlp has a parameter 'alpah'; did you mean 'alpha'? (their parameters: "
        "alpha, batch_size, decay, epochs, hidden, l2, lags, lr, patience)"]
    assert refused(architecture=["ridge", "mlp", "branin"], parameters={"q": [1]})[0].startswith(
        "parameters.q: none of ridge, mlp, branin has a parameter 'q' (their parameters: ")


def test_an_architecture_that_declares_nothing_accepts_any_shared_name():
    resolve_architectures(spec_of(architecture=["ridge", "tests.archs:noop"], parameters={"anything": [1, 2]}))
    resolve_architectures(spec_of(architecture="tests.archs:noop", parameters={"anything": [1]},
                                  objective={"metric": "whatever"}))
    resolve_architectures(spec_of(command=["echo", "{anything}"], parameters={"anything": [1]},
                                  objective={"metric": "whatever"}))


def test_initial_values_an_architecture_of_a_shared_block_does_not_read():
    body = {"architecture": ["ridge", "mlp"], "parameters": {"alpha": [1, 10], "lr": [0.1], "epochs": 5},
            "search": {"initial": [{"architecture": "ridge", "alpha": 3, "lr": 0.5}]}}
    assert refused(**body) == ["search.initial[0].lr: ridge has no parameter 'lr' (its parameters: alpha, lags)"]
    body["search"]["initial"] = [{"architecture": "ridge", "alpha": 3}, {"architecture": "mlp", "lr": 0.5}]
    spec = spec_of(**body)  # the fixed epochs goes to every trial, the initial ones too: not the user's value
    assert spec.search.initial == (("ridge", {"alpha": 3, "epochs": 5}), ("mlp", {"lr": 0.5, "epochs": 5}))
    resolve_architectures(spec)


def test_objective_of_several_architectures_and_not_the_runners_own_columns():
    assert refused(architecture=["ridge", "lstm-attention"], objective={"metric": "attention_penalti"}) == [
        "objective.metric: 'attention_penalti' is not a metric ridge or lstm-attention reports; did you mean "
        "'attention_penalty'? (they report: val_mse, val_mae, train_loss, epochs_run, train_time_s, best_epoch, "
        "attention_penalty)"]
    resolve_architectures(spec_of(architecture=["ridge", "lstm-attention"], objective={"metric": "attention_penalty"}))
    # a row's duration_s is the runner's, not a metric the trial returns (the runner fails a trial without it)
    assert refused(architecture="mlp", objective={"metric": "duration_s"}) == [
        f"objective.metric: 'duration_s' is not a metric mlp reports; did you mean 'train_time_s'? "
        f"(it reports: {MLP_METRICS})"]
    resolve_architectures(spec_of(architecture="branin", objective={"metric": "val_mse", "mode": "min"}))
    with pytest.raises(SpecError, match=r"^objective.metric: 'train_time_s' is not a metric branin reports"):
        resolve_architectures(spec_of(architecture="branin", objective={"metric": "train_time_s"}))


def test_every_example_spec_passes(tmp_path):
    from pathlib import Path

    from hpt_cli.spec import load_spec

    for path in sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.json")):
        resolve_architectures(load_spec(path, today=date(2016, 8, 15)))


# -- the commands ------------------------------------------------------------------------------------
def test_validate_and_run_exit_2_with_one_line_and_run_nothing(tmp_path):
    spec = tmp_path / "t.json"
    spec.write_text(json.dumps({"architecture": "ridge", "date-range": RANGE, "parameters": {"alpah": [1, 2]}}))
    line = "parameters.alpah: ridge has no parameter 'alpah'; did you mean 'alpha'? (its parameters: alpha, lags)"
    runner = CliRunner()
    validate = runner.invoke(cli, ["validate", str(spec)])
    assert validate.exit_code == 2
    assert validate.stdout == "" and validate.stderr == f"error: {spec}:1: {line}\n"
    stdin = runner.invoke(cli, ["validate", "-"], input=spec.read_text())
    assert stdin.exit_code == 2 and stdin.stderr == f"error: <stdin>: {line}\n"
    run = runner.invoke(cli, ["run", str(spec), "--output", str(tmp_path / "runs")])
    assert run.exit_code == 2 and run.stderr == f"error: {spec}:1: {line}\n"  # where, as validate says it
    stdin = runner.invoke(cli, ["run", "-", "--output", str(tmp_path / "runs")], input=spec.read_text())
    assert stdin.exit_code == 2 and stdin.stderr == f"error: <stdin>: {line}\n"
    assert not (tmp_path / "runs").exists()


def test_validate_names_the_line_of_each_problem(tmp_path):
    spec = tmp_path / "t.json"
    spec.write_text('{\n "architecture": "mlp",\n "parameters": {\n  "lr": [0.1],\n  "hiden": [[8]]\n },\n'
                    ' "objective": {"metric": "val_mes"}\n}\n')
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        f"error: {spec}:5: parameters.hiden: mlp has no parameter 'hiden'; did you mean 'hidden'? "
        f"(its parameters: {MLP})",
        f"error: {spec}:7: objective.metric: 'val_mes' is not a metric mlp reports; did you mean 'val_mse'? "
        f"(it reports: {MLP_METRICS})",
    ]


def test_run_spec_refuses_before_any_worker_starts(tmp_path):
    spec = spec_of(architecture="mlp", parameters={"lr": [0.01]}, objective={"metric": "val_mes"})
    with pytest.raises(SpecError, match=r"^objective.metric: 'val_mes' is not a metric mlp reports; did you mean"):
        run_spec(spec, RunOptions(output=str(tmp_path / "runs"), workers=1))
    assert not (tmp_path / "runs").exists()
    with pytest.raises(SpecError):
        preflight(spec)


def test_a_machine_note_stays_a_note_in_validate(tmp_path):
    spec = tmp_path / "old.json"
    spec.write_text(json.dumps({"architecture": "ridge", "date-range": [["2017-01-01", "2017-04-01"]],
                                "parameters": {"alpha": [1]}}))
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 0 and result.stdout.startswith("ok: ")
    assert result.stderr.startswith("note: on this machine `hpt run` would stop here: no rows of chicago_ridership")


def test_architectures_space_lists_the_parameters():
    spaced = CliRunner().invoke(cli, ["architectures", "--space"]).output
    blocks = {b.split(":")[0]: b for b in spaced.split("\n\n")}
    assert f"\n  parameters: {MLP}\n" in blocks["mlp"]
    assert "\n  parameters: alpha, lags\n" in blocks["ridge"]
    doc = json.loads(CliRunner().invoke(cli, ["architectures", "--format", "json"]).output)
    assert doc["ridge"]["parameters"] == ["alpha", "lags"] and doc["branin"]["parameters"] == ["delay_s", "x1", "x2"]
