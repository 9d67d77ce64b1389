"""A mistyped gs:// scheme is one line (exit 2), never a local folder named `gs:`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from tests.helpers import write_spec


@pytest.mark.parametrize("uri, meant", [("gs:/bkt/sweeps", "gs://bkt/sweeps"), ("gs:bkt", "gs://bkt"),
                                        ("GS://bkt/x", "gs://bkt/x")])
@pytest.mark.parametrize("command", ["run", "watch", "report"])
def test_a_mistyped_bucket_location_is_refused(tmp_path, monkeypatch, uri, meant, command):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, architecture="ridge", parameters={"alpha": [1.0]})
    args = {"run": ["run", str(spec), "-o", uri, "-q"], "watch": ["watch", uri], "report": ["report", uri]}[command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output == (f"error: {uri}: not a gs:// location (did you mean {meant}?); a local folder must not "
                             "start with 'gs:'\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]  # no folder named gs: or GS:
