"""A trial's error may hold terminal escape codes and other control characters (coloured
stderr from training code): the JUnit file stays well-formed XML, and plain log lines (progress
without a terminal, `hpt watch`) carry no escape codes."""

import io
import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema

from hpt_cli.cli.progress import Progress
from hpt_cli.dates import DateRange
from hpt_cli.runner.events import RunInfo, TrialOutcome
from hpt_cli.runner.reporters import JUnitReport
from hpt_cli.sanitize import plain, strip_ansi, xml_safe
from hpt_cli.search.trial import Trial
from hpt_cli.watch import watch
from tests.helpers import HPT, subprocess_env, write_spec

JUNIT_XSD = Path(__file__).with_name("junit.xsd")
COLOURED = 'ValueError: bad x <3> & "quoted" \x1b[31mred\x1b[0m\x07 bell'


def test_strip_ansi_removes_whole_sequences_only():
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b]0;title\x07osc \x1b(Bcharset \x1b[?25lcursor \x1b7save") == (
        "red osc charset cursor save")
    assert strip_ansi("no escape [31m here") == "no escape [31m here"


def test_plain_and_xml_safe_replace_what_is_left():
    text = "a\x1b[31mb\x1b\nc\x00d\te\rg\udc80h\ufffei"  # a lone ESC, NUL, tab, LF, CR, a lone surrogate, U+FFFE
    assert plain(text) == "ab\ufffd\nc\ufffdd\te\ufffdg\ufffdh\ufffei"
    assert xml_safe(text) == "ab\ufffd\nc\ufffdd\te\rg\ufffdh\ufffdi"


def _info(**extra):
    return RunInfo("ansi-1234", "runs/ansi-1234", total=2, skipped=0, workers=2, objective="val_mse",
                   mode="min", resolved_spec={}, **extra)


def _trial(i: int, label: str = "plain") -> Trial:
    return Trial(i, "mlp", {"lr": i, "label": label}, DateRange.from_json(["2015-01-01", "2015-02-01"]))


def test_junit_is_well_formed_with_control_characters_in_any_field(tmp_path):
    failed = _trial(1, label="tab\x1b[1mbold\x1b[0m\x01")
    report = JUnitReport(str(tmp_path / "j.xml"))
    report.run_started(_info())
    report.trial_finished(TrialOutcome(_trial(0), "ok", {"val_mse": 1.5}, None, 0.25, 1, "w0", "trials/a"))
    report.trial_finished(TrialOutcome(failed, "failed", {}, COLOURED, 0.5, 1, "w1", "trials/b\x02"))
    report.run_finished({"run_id": "ansi-1234", "name": "ansi\x1b[0m", "status": "complete", "exit_code": 1,
                         "wall_time_s": 1.0})

    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(tmp_path / "j.xml"))
    root = ET.parse(tmp_path / "j.xml").getroot()
    assert root.get("name") == "hpt ansi" and root.get("tests") == "2" and root.get("failures") == "1"
    case = root.findall("./testsuite/testcase")[1]
    assert case.get("name") == f'{failed.id} lr=1, label="tab\\u001b[1mbold\\u001b[0m\\u0001"'  # json.dumps
    failure = case.find("failure")
    assert failure.get("message") == 'ValueError: bad x <3> & "quoted" red\ufffd bell'
    assert failure.text == 'ValueError: bad x <3> & "quoted" red\ufffd bell\nlog: trials/b\ufffd/log.txt'
    assert "\x1b" not in (tmp_path / "j.xml").read_text()


def test_plain_progress_lines_strip_escape_codes():
    out = io.StringIO()
    p = Progress(stream=out, live=False)
    p.run_started(_info())
    p.trial_finished(TrialOutcome(_trial(1), "failed", {}, COLOURED, 0.5, 1, "w1", "trials/b"))
    assert out.getvalue().splitlines()[-1] == (
        f'[1/2] failed  {_trial(1).id} mlp 2015-01-01..2015-02-01 ValueError: bad x <3> & "quoted" red\ufffd bell '
        "(0.5 s)")


def test_watch_failed_lines_strip_escape_codes(tmp_path):
    (tmp_path / "results.csv").write_text(
        "trial_id,status,architecture,start,end,val_mse,error\n"
        "a1,ok,mlp,2015-01-01,2015-02-01,1.5,\n"
        f'b2,failed,mlp,2015-01-01,2015-02-01,,"{COLOURED.replace(chr(34), chr(34) * 2)}"\n')
    (tmp_path / "summary.json").write_text(json.dumps({"status": "complete", "exit_code": 1, "wall_time_s": 2.0}))
    lines: list[str] = []
    assert watch(str(tmp_path), lines.append, sleep=lambda s: None) == 1
    assert lines == [
        f"watching {tmp_path}",
        'failed: b2 mlp 2015-01-01..2015-02-01 ValueError: bad x <3> & "quoted" red\ufffd bell',
        "[2] 1 ok, 1 failed, best val_mse 1.5 (trial a1)",
        "complete: exit code 1, wall time 2.0 s",
    ]


# a command trial whose stderr is coloured: odd x fails with `\x1b[31mbad <x> & "q"\x1b[0m` and a BEL
ANSI_SCRIPT = (
    "import sys, json; x = int('{x}'); "
    "x % 2 and sys.exit(sys.stderr.write('\\x1b[31mbad <%d> & \"q\"\\x1b[0m\\x07\\n' % x) and 1); "
    "print(json.dumps(dict(val_mse=x)))"
)


@pytest.mark.slow
def test_a_coloured_error_through_a_real_run_junit_log_and_watch(tmp_path):
    spec = write_spec(tmp_path, name="ansi", command=[sys.executable, "-c", ANSI_SCRIPT],
                      parameters={"x": [1, 2]})
    out, junit = tmp_path / "out", tmp_path / "rep" / "j.xml"
    run = subprocess.run([HPT, "run", str(spec), "-o", str(out), "-j", "2", "--junit", str(junit)],
                         env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    error = 'RuntimeError: command exited with code 1: bad <1> & "q"\ufffd'
    assert "\x1b" not in run.stderr and f" {error} (" in run.stderr  # the plain progress line
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(str(junit))
    (case,) = [c for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None]
    assert case.find("failure").get("message") == error
    trial_id = case.get("name").split()[0]
    (folder,) = out.iterdir()
    watched = subprocess.run([HPT, "watch", str(folder)], env=subprocess_env(), capture_output=True, text=True,
                             timeout=60)
    assert watched.returncode == 1
    assert [line for line in watched.stdout.splitlines() if line.startswith("failed: ")] == [
        f"failed: {trial_id} command 2015-01-01..2015-02-01 {error}"]
