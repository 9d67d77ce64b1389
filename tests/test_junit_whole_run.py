"""`--junit` covers the whole run folder, as summary.json's counts do: on a resumed run the trials
finished by earlier attempts are test cases too, so their failures still show in Jenkins."""

import json
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema

from hpt_cli.dates import DateRange
from hpt_cli.runner.events import RunInfo, TrialOutcome
from hpt_cli.runner.reporters import JUnitReport
from hpt_cli.search.trial import Trial
from hpt_cli.storage.results import Columns
from tests.helpers import HPT, subprocess_env, write_spec

JUNIT_XSD = Path(__file__).with_name("junit.xsd")
EARLIER_NOTE = "\n(finished by an earlier attempt of this run)"
SUMMARY = {"run_id": "demo-1234", "name": "demo", "status": "complete", "exit_code": 1, "wall_time_s": 1.0}


def _outcomes() -> list[TrialOutcome]:
    rng = DateRange.from_json(["2015-01-01", "2015-02-01"])
    ok = Trial(0, "mlp", {"act": "relu", "lr": 0.1, "layers": [32, 16], "bias": True}, rng)
    failed = Trial(1, "mlp", {"act": "tanh", "lr": 1, "layers": [8], "bias": False}, rng)
    stopped = Trial(2, "ridge", {"alpha": 2.5}, rng, repeat=1)
    return [
        TrialOutcome(ok, "ok", {"val_mse": 1.5, "train_mse": 0.25}, None, 0.5, 1, "w0", f"trials/{ok.id}"),
        TrialOutcome(failed, "failed", {}, 'ValueError: bad <lr> & "x"', 0.75, 2, "w1", f"trials/{failed.id}"),
        TrialOutcome(stopped, "stopped", {"val_mse": 3.0, "epochs_run": 4.0}, None, 1.25, 1, "w0",
                     f"trials/{stopped.id}"),
    ]


def _rows(outcomes: list[TrialOutcome]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The outcomes as results.csv rows (what the runner reads back on resume)."""
    columns = Columns(["act", "lr", "layers", "bias", "alpha"], ["val_mse"])
    rows = []
    for o in outcomes:
        t = o.trial
        fields = {"trial_id": t.id, "status": o.status, "architecture": t.architecture,
                  "start": t.date_range.start.isoformat(), "end": t.date_range.end.isoformat(),
                  "repeat": t.repeat, "seed": t.seed, "attempts": o.attempts, "duration_s": o.duration_s,
                  "worker": o.worker, "artifact_dir": o.artifact_dir, "error": o.error or ""}
        rows.append(dict(zip(columns.header, columns.row(fields, t.params, o.metrics))))
    return rows, dict(columns.params)


def _render(earlier: list[TrialOutcome], now: list[TrialOutcome]) -> str:
    rows, param_columns = _rows(earlier)
    report = JUnitReport("unused.xml")
    report.run_started(RunInfo("demo-1234", "runs/demo-1234", total=3, skipped=len(rows), workers=2,
                               objective="val_mse", mode="min", resolved_spec={}, earlier=rows,
                               param_columns=param_columns))
    report.started = 1_700_000_000.0  # the testsuite's timestamp: the same in every rendering
    for o in now:
        report.trial_finished(o)
    return report.render(SUMMARY)


def test_earlier_rows_are_the_same_test_cases_as_when_they_ran():
    outcomes = _outcomes()
    all_now = _render([], outcomes)
    all_earlier = _render(outcomes, [])
    assert 'tests="3" failures="1"' in all_now
    assert all_earlier.replace(EARLIER_NOTE, "") == all_now
    assert all_earlier.count(EARLIER_NOTE) == 1
    # one earlier trial, two of this invocation: the earlier ones come first, nothing is counted twice
    mixed = _render(outcomes[1:2], [outcomes[0], outcomes[2]])
    root = ET.fromstring(mixed)
    assert root.get("tests") == "3" and root.get("failures") == "1"
    names = [c.get("name").split()[0] for c in root.iter("testcase")]
    assert names == [outcomes[1].trial.id, outcomes[0].trial.id, outcomes[2].trial.id]
    (failure,) = root.iter("failure")
    assert failure.text == f'ValueError: bad <lr> & "x"\nlog: trials/{outcomes[1].trial.id}/log.txt{EARLIER_NOTE}'


def test_earlier_rows_keep_their_names_metrics_and_stopped_note():
    root = ET.fromstring(_render(_outcomes(), []))
    ok, failed, stopped = _outcomes()
    cases = list(root.iter("testcase"))
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases] == [
        ("hpt.mlp.2015-01-01..2015-02-01", f'{ok.trial.id} act="relu", lr=0.1, layers=[32, 16], bias=true', "0.500"),
        ("hpt.mlp.2015-01-01..2015-02-01", f'{failed.trial.id} act="tanh", lr=1, layers=[8], bias=false', "0.750"),
        ("hpt.ridge.2015-01-01..2015-02-01", f"{stopped.trial.id} alpha=2.5", "1.250"),
    ]
    assert cases[0].find("system-out").text == '{"train_mse": 0.25, "val_mse": 1.5}'
    assert cases[2].find("system-out").text == ('stopped early by the scheduler at epoch 4\n'
                                                '{"epochs_run": 4.0, "val_mse": 3.0}')


def _run(spec: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2", *args], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_resumed_run_lists_the_failures_of_its_earlier_part(tmp_path):
    spec = write_spec(tmp_path, name="resumed", architecture="tests.archs:fault",
                      parameters={"kind": ["ok", "raise"], "value": [1, 2]})
    out = tmp_path / "out"
    assert _run(spec, out).returncode == 1
    (folder,) = out.iterdir()
    # as if the first attempt had been stopped before its last two trials (one ok, one failed)
    lines = (folder / "results.csv").read_text().splitlines(keepends=True)
    dropped = [next(i for i, line in enumerate(lines) if f",{status}," in line) for status in ("ok", "failed")]
    (folder / "results.csv").write_text("".join(line for i, line in enumerate(lines) if i not in dropped))

    def resume(tag: str) -> tuple[ET.Element, dict]:
        junit, summary = tmp_path / f"{tag}.xml", tmp_path / f"{tag}.json"
        result = _run(spec, out, "--junit", str(junit), "--summary-json", str(summary))
        assert result.returncode == 1, result.stderr
        xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(junit))
        return ET.parse(junit).getroot(), json.loads(summary.read_text())

    root, summary = resume("second")  # two trials run again, two were done before
    assert summary["counts"]["skipped"] == 2
    assert (root.get("tests"), root.get("failures")) == ("4", "2")
    assert summary["counts"]["ok"] + summary["counts"]["failed"] == 4 and summary["counts"]["failed"] == 2
    failures = [f.text for f in root.iter("failure")]
    assert sum(text.endswith(EARLIER_NOTE) for text in failures) == 1
    assert all(text.startswith("ValueError: bad value for trial") for text in failures)

    root, summary = resume("third")  # nothing left to run: every test case is from before
    assert summary["counts"]["skipped"] == 4
    assert (root.get("tests"), root.get("failures")) == ("4", "2")
    assert all(f.text.endswith(EARLIER_NOTE) for f in root.iter("failure"))
