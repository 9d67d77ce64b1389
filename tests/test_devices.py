"""Inventory: nvidia-smi parsing, CUDA_VISIBLE_DEVICES, --gpus, HPT_FAKE_GPUS, `hpt devices`."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from click.testing import CliRunner

from hpt_cli.cli import HptGroup, cli
from hpt_cli.devices import Gpu, Inventory, detect, fake, parse_mib, plan_run, select
from hpt_cli.devices import worker as hygiene
from hpt_cli.devices.inventory import QUERY, parse_query
from hpt_cli.errors import HptError

# what nvidia-smi --query-gpu=<QUERY> --format=csv,noheader,nounits prints on a 2-GPU machine
SMI = """\
0, GPU-5a6b7c8d-0000-1111-2222-333344445555, NVIDIA H100 80GB HBM3, 81559, 1024, 80535, 3
1, GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff, NVIDIA H100 80GB HBM3, 81559, 30000, 51559, 97
"""


def stub_run(stdout: str = SMI, returncode: int = 0, stderr: str = "", calls: list | None = None):
    def run(argv, **kwargs):
        if calls is not None:
            calls.append((argv, kwargs))
        return subprocess.CompletedProcess(argv, returncode, stdout, stderr)
    return run


def env(**extra: str) -> dict[str, str]:
    out = {"PATH": os.environ.get("PATH", "")}
    out.update(extra)
    return out


_WIRED = "devices" in cli.commands  # once hpt_cli/cli/__init__.py imports device_commands
from hpt_cli.cli.device_commands import devices

if not _WIRED:  # importing it registered it on `cli`: leave the global group as it was
    cli.commands.pop("devices", None)
GROUP = HptGroup(name="hpt", commands={"devices": devices})  # hpt's error handling, without the global group


# --- nvidia-smi output ----------------------------------------------------------------------------

def test_parse_query_reads_every_field():
    gpus = parse_query(SMI)
    assert gpus[0] == Gpu(index=0, uuid="GPU-5a6b7c8d-0000-1111-2222-333344445555", name="NVIDIA H100 80GB HBM3",
                          memory_total_mib=81559, memory_free_mib=80535, memory_used_mib=1024, utilization_pct=3)
    assert gpus[1].memory_free_mib == 51559 and gpus[1].memory_used_mib == 30000 and gpus[1].utilization_pct == 97
    assert gpus[0].label == "gpu0"


def test_parse_query_handles_na_commas_blank_lines_and_order():
    text = "\n1, GPU-b, Tesla T4, 15360, 0, 15360, [N/A]\n0, GPU-a, Odd, Name, 16384, 16, 16368, [Not Supported]\n\n"
    gpus = parse_query(text)
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[0].name == "Odd, Name" and gpus[0].utilization_pct is None
    assert gpus[1].utilization_pct is None and gpus[1].memory_free_mib == 15360
    with pytest.raises(ValueError, match="expected 7 fields"):
        parse_query("0, GPU-a, 1024\n")


def test_detect_asks_nvidia_smi_once_with_the_query():
    calls: list = []
    inventory = detect(env(), run=stub_run(calls=calls))
    assert [g.index for g in inventory.gpus] == [0, 1] and inventory.note == ""
    assert inventory.cpus == len(os.sched_getaffinity(0))
    (argv, kwargs), = calls
    assert argv == ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"]
    assert kwargs["timeout"] > 0 and kwargs["check"] is False


@pytest.mark.parametrize("visible, expected", [
    ("1", [1]),
    ("1,0", [1, 0]),                                       # CUDA's order, not nvidia-smi's
    ("0, 1", [0, 1]),
    ("GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff", [1]),     # a full UUID
    ("GPU-9f8e,GPU-5a6b", [1, 0]),                         # unique prefixes, as CUDA accepts
    ("", []),
    ("-1", []),
    ("0,7,1", [0]),                                        # CUDA stops at the first unknown entry
    ("MIG-1234", []),
])
def test_detect_keeps_what_cuda_visible_devices_allows(visible, expected):
    inventory = detect(env(CUDA_VISIBLE_DEVICES=visible), run=stub_run())
    assert [g.index for g in inventory.gpus] == expected
    if not expected:
        assert "CUDA_VISIBLE_DEVICES" in inventory.note


def test_detect_without_nvidia_smi_is_no_gpu_not_an_error(tmp_path):
    inventory = detect({"PATH": str(tmp_path)})
    assert inventory.gpus == () and inventory.note == "nvidia-smi not on PATH"


def test_detect_with_a_failing_or_hanging_nvidia_smi_is_no_gpu():
    failed = detect(env(), run=stub_run("", 9, "NVIDIA-SMI has failed because it couldn't communicate with "
                                               "the NVIDIA driver.\nMake sure ..."))
    assert failed.gpus == ()
    assert failed.note == ("nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the "
                           "NVIDIA driver.")

    def hang(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])
    assert detect(env(), run=hang).note.startswith("nvidia-smi did not answer")
    assert detect(env(), run=stub_run("garbage\n")).note.startswith("nvidia-smi output not understood")


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """A fake `nvidia-smi` first on PATH that prints SMI (and records its arguments)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'args'}\ncat <<'EOF'\n{SMI}EOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("HPT_FAKE_GPUS", raising=False)
    return tmp_path / "args"


def test_detect_end_to_end_with_a_fake_nvidia_smi(fake_smi, monkeypatch):
    inventory = detect()
    assert [g.uuid for g in inventory.gpus] == ["GPU-5a6b7c8d-0000-1111-2222-333344445555",
                                                "GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"]
    assert fake_smi.read_text().split() == [f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-9f8e7d6c")
    assert [g.index for g in detect().gpus] == [1]


# --- HPT_FAKE_GPUS ----------------------------------------------------------------------------------

def test_fake_inventories():
    four = fake("4x80GiB", cpus=16)
    assert [g.index for g in four.gpus] == [0, 1, 2, 3] and four.cpus == 16
    assert {g.memory_total_mib for g in four.gpus} == {81920} and {g.memory_free_mib for g in four.gpus} == {81920}
    assert len({g.uuid for g in four.gpus}) == 4
    two = fake("A100:40960,A100:40960")
    assert [(g.name, g.memory_total_mib) for g in two.gpus] == [("A100", 40960), ("A100", 40960)]
    used = fake("2xH100:80GiB:30GiB, 24GiB")
    assert [(g.index, g.name, g.memory_free_mib, g.memory_used_mib) for g in used.gpus] == [
        (0, "H100", 51200, 30720), (1, "H100", 51200, 30720), (2, "Fake GPU", 24576, 0)]
    assert fake("80GiB:20GiB").gpus[0].memory_used_mib == 20480
    assert fake("none").gpus == () and fake("0").gpus == ()


@pytest.mark.parametrize("text", ["4x", "A100:lots", "A100:10GiB:20GiB", "a:b:c:d", "0x80GiB"])
def test_fake_rejects_bad_text_in_one_line(text):
    with pytest.raises(HptError) as info:
        fake(text)
    assert "HPT_FAKE_GPUS" in str(info.value) and "\n" not in str(info.value)


def test_detect_uses_hpt_fake_gpus_instead_of_nvidia_smi():
    def never(argv, **kwargs):
        raise AssertionError("nvidia-smi must not run")
    inventory = detect({"HPT_FAKE_GPUS": "4x80GiB", "CUDA_VISIBLE_DEVICES": "3,1"}, run=never)
    assert [g.index for g in inventory.gpus] == [3, 1]


def test_parse_mib():
    assert parse_mib("6GiB") == 6144 and parse_mib("6 GB") == 6144 and parse_mib("512MiB") == 512
    assert parse_mib("1.5GiB") == 1536 and parse_mib(2048) == 2048 and parse_mib("100") == 100
    with pytest.raises(ValueError, match="memory size"):
        parse_mib("six gigs")


# --- --gpus ------------------------------------------------------------------------------------------

TWO = Inventory(gpus=fake("2x80GiB").gpus, cpus=8)


def test_select():
    assert select(TWO, None) is TWO and select(TWO, "all") is TWO
    assert select(TWO, "none").gpus == () and select(TWO, "none").cpus == 8
    assert select(TWO, "1").indices == (1,)
    assert select(TWO, "1,0").indices == (1, 0)


@pytest.mark.parametrize("spec, message", [
    ("5", "--gpus 5: no GPU 5 here (found: 0, 1)"),
    ("0,5", "--gpus 0,5: no GPU 5 here (found: 0, 1)"),
    ("0,0", "--gpus 0,0: GPU 0 is named twice"),
    ("gpu0", "--gpus gpu0: expected GPU indices such as 0,2 (as `hpt devices` lists them), 'all' or 'none'"),
])
def test_select_errors_are_one_line(spec, message):
    with pytest.raises(HptError) as info:
        select(TWO, spec)
    assert str(info.value) == message


def test_select_on_a_machine_without_gpus():
    with pytest.raises(HptError, match=r"no GPU 0 here \(found: none\)"):
        select(Inventory(gpus=(), cpus=2), "0")


def test_plan_run_detects_only_when_a_gpu_is_asked_for():
    def never(argv, **kwargs):
        raise AssertionError("nvidia-smi must not run for a CPU run")
    inventory, slots = plan_run(0, 1, workers=3, run=never, env={})
    assert len(slots) == 3 and {s.label for s in slots} == {"cpu"}
    _, slots = plan_run(0.5, 1, gpus="none", run=never, env={})
    assert {s.device for s in slots} == {"cpu"}
    inventory, slots = plan_run("1/2", 2, gpu_memory_per_trial="6GiB", gpus="1", env={"HPT_FAKE_GPUS": "2x80GiB"})
    assert inventory.indices == (1,) and [s.label for s in slots] == ["gpu1", "gpu1"]
    assert slots[0].env["HPT_GPU_MEMORY_MIB"] == "6144"


# --- the worker's side ------------------------------------------------------------------------------

def test_trial_device_comes_from_the_slot(monkeypatch):
    monkeypatch.delenv("HPT_FAKE_GPUS", raising=False)
    monkeypatch.delenv("HPT_DEVICE", raising=False)
    assert hygiene.trial_device("cpu") == "cpu"
    monkeypatch.setenv("HPT_DEVICE", "cuda:0")
    assert hygiene.trial_device("cpu") == "cuda:0"
    monkeypatch.setenv("HPT_FAKE_GPUS", "4x80GiB")  # pretend placement: the trial runs on the CPU
    assert hygiene.trial_device("cpu") == "cpu"


# --- hpt devices -----------------------------------------------------------------------------------

def invoke(*args: str, **environ: str):
    base = {"HPT_FAKE_GPUS": None, "CUDA_VISIBLE_DEVICES": None, "PATH": "/nonexistent"}
    return CliRunner().invoke(GROUP, ["devices", *args], env={**base, **environ})


def placement(output: str) -> list[str]:
    """The slot lines of `hpt devices` output, without notes (which depend on this machine's CPUs)."""
    return [line for line in output.splitlines() if not line.startswith("note: ")][-2:]


def test_devices_lists_gpus_and_cpus():
    result = invoke(HPT_FAKE_GPUS="A100:40GiB,A100:40GiB:10GiB")
    assert result.exit_code == 0, result.output
    cpus = len(os.sched_getaffinity(0))
    assert result.output == (
        "GPU  name  memory     free       use\n"
        "0    A100  40960 MiB  40960 MiB  0%\n"
        "1    A100  40960 MiB  30720 MiB  0%\n"
        f"CPUs: {cpus}\n")


def test_devices_without_gpu_and_with_a_placement():
    result = invoke()
    assert result.exit_code == 0 and result.output.startswith("no GPU found (nvidia-smi not on PATH)\nCPUs: ")
    result = invoke("--gpus", "1,2", "--gpus-per-trial", "0.25", "--cpus-per-trial", "2", HPT_FAKE_GPUS="4x80GiB")
    assert result.exit_code == 0, result.output
    assert placement(result.output) == ["8 slots: gpu1 x4, gpu2 x4",
                                               "each trial: 1/4 of a GPU, up to 20480 MiB, 2 CPU threads"]


def test_devices_errors():
    result = invoke("--gpus", "5", HPT_FAKE_GPUS="2x80GiB")
    assert result.exit_code == 2 and "error: --gpus 5: no GPU 5 here (found: 0, 1)" in result.output
    result = invoke("--gpus-per-trial", "0.3", HPT_FAKE_GPUS="2x80GiB")
    assert result.exit_code == 2 and "1/k for a whole k" in result.output
    result = invoke("--gpus-per-trial", "0.5")
    assert result.exit_code == 2
    assert ("error: resources.gpus_per_trial is 0.5 but no GPU was found (nvidia-smi not on PATH); "
            "use --gpus none to run on CPUs") in result.output
    assert "hpt devices --gpus 0,2" in CliRunner().invoke(GROUP, ["devices", "--help"]).output


def test_memory_alone_places_by_free_memory_in_plan_run_and_hpt_devices():
    # review #2: `hpt devices` refused gpu_memory_per_trial without a share while `hpt run` ran on CPUs
    fake_env = {"HPT_FAKE_GPUS": "2xH100:80GiB:30GiB"}
    _, slots = plan_run(0, 1, workers=4, gpu_memory_per_trial="20GiB", env=fake_env)
    assert [(s.label, s.env["HPT_GPU_MEMORY_MIB"]) for s in slots] == [("gpu0", "20480"), ("gpu1", "20480")] * 2
    _, slots = plan_run(0, 1, gpu_memory_per_trial="20GiB", gpus="none", env=fake_env)
    assert {s.label for s in slots} == {"cpu"}
    for args in (["--gpu-memory-per-trial", "20GiB"], ["--gpus-per-trial", "0", "--gpu-memory-per-trial", "20GiB"]):
        result = invoke(*args, "-j", "4", **fake_env)
        assert result.exit_code == 0, result.output
        assert placement(result.output) == [
            "4 slots: gpu0 x2, gpu1 x2", "each trial: 20480 MiB of a GPU (by free memory, capped there), 1 CPU thread"]


def test_devices_refuses_less_than_a_mib_and_notes_oversubscription():
    result = invoke("--gpus-per-trial", "0.5", "--gpu-memory-per-trial", "100KiB", HPT_FAKE_GPUS="2x80GiB")
    assert result.exit_code == 2
    assert ("error: Invalid value for '--gpu-memory-per-trial': expected a GPU memory size of at least 1MiB, such "
            "as 6GiB, got '100KiB'") in result.output
    cpus = len(os.sched_getaffinity(0))
    result = invoke("--gpus-per-trial", "0", "--cpus-per-trial", str(cpus + 1))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith(f"note: cpus_per_trial is {cpus + 1} but this process may use "
                                                     f"only {cpus} usable CPU")
