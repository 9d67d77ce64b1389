"""A run's resources: the spec's checks (hpt validate), the command line's overrides (hpt run),
and the Dask executor's GPU request under --gpus (review findings 2, 3, 4, 6)."""

from __future__ import annotations

import csv
import json
import subprocess
from datetime import date

import pytest
from click.testing import CliRunner

from hpt_cli.cli import cli
from hpt_cli.errors import HptError, SpecError
from hpt_cli.runner import RunOptions, make_executor, run_resources
from hpt_cli.runner.run_id import run_id
from hpt_cli.spec.parse import parse_spec
from tests.helpers import HPT, subprocess_env, write_spec

TODAY = date(2024, 1, 1)


def spec_with(resources: dict, **body):
    return parse_spec(json.dumps({"architecture": "branin", "resources": resources, **body}), source="s.json",
                      today=TODAY)


def problems(resources: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        spec_with(resources)
    return str(info.value).splitlines()


def test_memory_alone_is_auto_in_the_spec():
    assert spec_with({"gpu_memory_per_trial": "6GiB"}).resources.gpus_per_trial == "auto"
    assert spec_with({"gpus_per_trial": 0, "gpu_memory_per_trial": 6144}).resources.gpus_per_trial == "auto"
    assert spec_with({"gpus_per_trial": 0.5, "gpu_memory_per_trial": "6GiB"}).resources.gpus_per_trial == 0.5
    assert spec_with({}).resources.gpus_per_trial == 0.0


@pytest.mark.parametrize("memory", ["0", "100KiB", 0])
def test_less_than_a_mib_of_gpu_memory_is_a_spec_problem(memory):
    # review #6: passed `hpt validate`, then `hpt run` exited 2
    assert problems({"gpus_per_trial": 0.5, "gpu_memory_per_trial": memory}) == [
        f"s.json:1: resources.gpu_memory_per_trial: expected a GPU memory size of at least 1MiB, such as 6GiB, "
        f"got {memory!r}"]


def test_command_line_overrides_the_spec_resources():
    spec = spec_with({"gpus_per_trial": 0.5, "cpus_per_trial": 2, "gpu_memory_per_trial": "6GiB"})
    r = run_resources(spec, RunOptions())
    assert (r.gpus_per_trial, r.cpus_per_trial, r.gpu_memory_per_trial_mib) == (0.5, 2, 6144)
    r = run_resources(spec, RunOptions(gpus_per_trial=1, cpus_per_trial=4, gpu_memory_per_trial_mib=1024))
    assert (r.gpus_per_trial, r.cpus_per_trial, r.gpu_memory_per_trial_mib) == (1, 4, 1024)
    r = run_resources(spec, RunOptions(gpus_per_trial=0.0))  # CPU slots: the spec's memory goes with the share
    assert (r.gpus_per_trial, r.gpu_memory_per_trial_mib) == (0.0, None)
    r = run_resources(spec_with({}), RunOptions(gpu_memory_per_trial_mib=2048))
    assert (r.gpus_per_trial, r.gpu_memory_per_trial_mib) == ("auto", 2048)


def test_make_executor_places_by_the_overrides(monkeypatch):
    monkeypatch.setenv("HPT_FAKE_GPUS", "2x80GiB")
    spec = spec_with({"gpus_per_trial": 1})
    executor, workers, devices, placement = make_executor(
        spec, RunOptions(gpus_per_trial="1/4", gpu_memory_per_trial_mib=4096, workers=4), total=8)
    executor.shutdown()
    assert workers == 4 and sorted(devices.values()) == ["gpu0", "gpu0", "gpu1", "gpu1"]
    assert placement[1].startswith("each trial: 1/4 of a GPU, up to 4096 MiB")


def test_run_options_on_the_command_line(tmp_path):
    spec = write_spec(tmp_path, name="res", architecture="branin", parameters={"x1": [0.0, 1.0], "x2": [2.0]})
    expected = run_id(parse_spec(spec.read_text(), today=TODAY))
    cmd = [HPT, "run", str(spec), "-o", str(tmp_path / "out"), "--gpus-per-trial", "0.5", "--cpus-per-trial", "1",
           "--gpu-memory-per-trial", "6GiB"]
    proc = subprocess.run(cmd, env=subprocess_env(HPT_FAKE_GPUS="1x80GiB", CI="1"), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "each trial: 1/2 of a GPU, up to 6144 MiB, 1 CPU thread" in proc.stderr
    folders = [p.name for p in (tmp_path / "out").iterdir()]
    assert folders == [expected]  # resources are not part of the run id
    with open(tmp_path / "out" / expected / "results.csv", newline="") as f:
        assert {row["device"] for row in csv.DictReader(f)} == {"gpu0"}


def test_run_options_are_checked_as_hpt_devices_checks_them(tmp_path):
    spec = write_spec(tmp_path, architecture="branin")
    for args, message in [(["--gpus-per-trial", "0.3"], "a share of a GPU must be 1/k for a whole k"),
                          (["--gpu-memory-per-trial", "0"], "expected a GPU memory size of at least 1MiB"),
                          (["--cpus-per-trial", "0"], "0 is not in the range x>=1")]:
        result = CliRunner().invoke(cli, ["run", str(spec), "-o", str(tmp_path / "out"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
    text = CliRunner().invoke(cli, ["run", "--help"]).output
    assert all(option in text for option in ("--gpus-per-trial", "--cpus-per-trial", "--gpu-memory-per-trial"))


class FakeDask:
    made: list[dict] = []

    def __init__(self, scheduler, slots=None, resources_per_job=None, env=None, imports=()):
        FakeDask.made.append({"resources": resources_per_job, "env": env})
        self.devices = {}

    def start(self):
        pass

    def free_slots(self):
        return 2


def test_dask_honours_gpus_none_and_refuses_a_gpu_list(monkeypatch):
    # review #4: the Dask branch never read --gpus
    pytest.importorskip("distributed")
    import hpt_cli.executors.dask as dask_module

    monkeypatch.setattr(dask_module, "DaskExecutor", FakeDask)
    spec = spec_with({"gpus_per_trial": 0.5})
    options = dict(executor="dask", scheduler="tcp://127.0.0.1:1")
    FakeDask.made.clear()
    make_executor(spec, RunOptions(**options), total=2)
    make_executor(spec, RunOptions(gpus="none", **options), total=2)
    make_executor(spec, RunOptions(gpus="all", **options), total=2)
    shared, none, every = FakeDask.made
    assert shared["resources"] == {"CPU": 1.0, "GPU": 0.5} and "CUDA_VISIBLE_DEVICES" not in shared["env"]
    assert none["resources"] == {"CPU": 1.0}
    assert none["env"]["CUDA_VISIBLE_DEVICES"] == "" and none["env"]["HPT_DEVICE"] == "cpu"
    assert every == shared
    make_executor(spec_with({"gpus_per_trial": 0.5, "gpu_memory_per_trial": "6GiB"}), RunOptions(**options), 2)
    assert FakeDask.made[-1]["env"]["HPT_GPU_MEMORY_MIB"] == "6144"  # the cap travels with the task
    with pytest.raises(HptError) as info:
        make_executor(spec, RunOptions(gpus="0,2", **options), total=2)
    assert str(info.value) == ("--gpus 0,2: on Dask each worker offers the GPUs it was started with "
                               "(CUDA_VISIBLE_DEVICES=0,2 hpt worker SCHEDULER); give --gpus none or all")
    assert info.value.exit_code == 2
