"""The torch build for the machine: a faked NVIDIA driver gets CUDA wheels at install and a loud error at
run start when the installed torch cannot use it (this machine's torch really is CPU-only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffusion_assets.torch_build import (
    GpuNotUsableError,
    NvidiaDriver,
    UnsupportedDriverError,
    choose_torch,
    find_nvidia_driver,
    refuse_cpu_fallback,
)

ROOT = Path(__file__).resolve().parents[2]
CU130 = ("torch==2.13.0+cu130", "--extra-index-url", "https://download.pytorch.org/whl/cu130")
CU126 = ("torch==2.13.0+cu126", "--extra-index-url", "https://download.pytorch.org/whl/cu126")
# real first lines of /proc/driver/nvidia/version (DGX Spark's open module, a proprietary x86 one)
SPARK = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for aarch64  580.95.05  Release Build  "
    "(dvs-builder@U16-I1-N08-12-3)  Sat Sep 20 00:00:00 UTC 2025\n"
    "GCC version:  gcc version 13.3.0 (Ubuntu 13.3.0-6ubuntu2~24.04)\n"
)
X86 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
OLD_ARM = "NVRM version: NVIDIA UNIX aarch64 Kernel Module  550.120  Fri Sep 13 11:01:10 UTC 2024\n"


def fake_nvidia_smi(folder: Path, version: str = "580.95.05", exit_code: int = 0) -> Path:
    """An ``nvidia-smi`` that answers ``--query-gpu=driver_version`` like the real one (or fails)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    message = (
        version
        if exit_code == 0
        else "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    )
    script.write_text(f"#!/bin/sh\necho '{message}'\nexit {exit_code}\n")
    script.chmod(0o755)
    return script


def fake_proc(tmp_path: Path, text: str, device_node: bool = True) -> tuple[Path, Path]:
    """A ``/proc/driver/nvidia/version``-like file and a ``/dev``-like folder (with ``nvidiactl``)."""
    proc, dev = tmp_path / "proc-version", tmp_path / "dev"
    proc.write_text(text)
    dev.mkdir()
    if device_node:
        (dev / "nvidiactl").touch()
    return proc, dev


def no_real_gpu() -> None:
    """These tests fake a driver around a CPU-only torch; a machine with a usable GPU skips them."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine's torch can use a GPU")


@pytest.mark.parametrize(
    ("text", "version"),
    [(SPARK, "580.95.05"), (X86, "535.104.05"), (OLD_ARM, "550.120"), ("unreadable\n", None)],
)
def test_the_kernel_module_file_gives_the_driver_version(tmp_path, text, version):
    proc, dev = fake_proc(tmp_path, text)
    assert find_nvidia_driver(proc, dev, path=str(tmp_path / "empty")) == NvidiaDriver(version, str(proc))


def test_a_container_without_the_gpu_device_has_no_driver(tmp_path):
    proc, dev = fake_proc(tmp_path, SPARK, device_node=False)  # the host's module, no /dev/nvidiactl
    assert find_nvidia_driver(proc, dev, path=str(tmp_path / "empty")) is None


def test_nvidia_smi_on_the_path_gives_the_driver_version(tmp_path):
    smi = fake_nvidia_smi(tmp_path / "bin", "570.86.15")
    driver = find_nvidia_driver(tmp_path / "absent", tmp_path, path=str(tmp_path / "bin"))
    assert driver == NvidiaDriver("570.86.15", str(smi))


def test_an_nvidia_smi_that_cannot_reach_a_driver_is_no_driver(tmp_path):
    fake_nvidia_smi(tmp_path / "bin", exit_code=9)
    assert find_nvidia_driver(tmp_path / "absent", tmp_path, path=str(tmp_path / "bin")) is None


def test_no_probe_answering_is_no_driver(tmp_path):
    assert find_nvidia_driver(tmp_path / "absent", tmp_path, path=str(tmp_path)) is None


@pytest.mark.parametrize(
    ("driver", "args"),
    [
        (None, ("torch==2.13.0",)),  # these CPU machines and CI: the plain pin, unchanged
        ("580.95.05", CU130),  # DGX Spark (r580, CUDA 13)
        ("580.65.06", CU130),  # the oldest driver CUDA 13.0 accepts
        ("575.57.08", CU126),
        ("550.120", CU126),
        ("525.60.13", CU126),  # the oldest driver CUDA 12 minor-version compatibility accepts
        ("unknown", CU130),  # a driver whose version is unreadable
    ],
)
def test_the_install_picks_the_cuda_build_the_driver_runs(driver, args):
    found = None if driver is None else NvidiaDriver(None if driver == "unknown" else driver, "probe")
    assert choose_torch("2.13.0", found).args == args


def test_a_driver_older_than_every_build_is_refused_with_the_fix():
    with pytest.raises(UnsupportedDriverError) as info:
        choose_torch("2.13.0", NvidiaDriver("470.82.01", "nvidia-smi"))
    assert "470.82.01" in str(info.value) and "525.60.13" in str(info.value)
    assert "make install TORCH_SPEC='torch==2.13.0'" in str(info.value)


def test_a_cuda_build_too_new_for_the_driver_names_the_build_it_runs():
    with pytest.raises(GpuNotUsableError) as info:
        refuse_cpu_fallback("auto", "2.13.0+cu130", "13.0", NvidiaDriver("550.120", "nvidia-smi"), "too old")
    message = str(info.value)
    assert "torch 2.13.0+cu130 (CUDA 13.0) cannot use it" in message and "(too old)" in message
    assert f"make install TORCH_SPEC='{' '.join(CU126)}'" in message


def test_a_cuda_build_that_matches_the_driver_points_at_the_gpu_itself(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(GpuNotUsableError, match=r"CUDA_VISIBLE_DEVICES \(''\)") as info:
        refuse_cpu_fallback("auto", "2.13.0+cu130", "13.0", NvidiaDriver("580.95.05", "nvidia-smi"))
    assert "make install" not in str(info.value)


def test_a_cuda_13_minor_release_counts_as_matching_an_r580_driver():
    with pytest.raises(GpuNotUsableError, match="already matches the driver"):
        refuse_cpu_fallback("cuda", "2.13.0+cu132", "13.2", NvidiaDriver("580.95.05", "nvidia-smi"))


def test_no_driver_means_no_gpu_to_miss():
    refuse_cpu_fallback("auto", "2.13.0+cpu", None, None)


# -- run start, with the real (CPU-only) torch and a fake nvidia-smi on PATH ---------------------------


@pytest.fixture
def faked_driver(tmp_path, monkeypatch) -> Path:
    """This machine as a DGX Spark with the wrong torch: a driver answers, torch is CPU-only."""
    no_real_gpu()
    smi = fake_nvidia_smi(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{smi.parent}{os.pathsep}{os.environ['PATH']}")
    return smi


@pytest.mark.parametrize("device", ["auto", "cuda", "cuda:0"])
def test_run_start_refuses_a_cpu_torch_next_to_an_nvidia_driver(faked_driver, device):
    import torch

    from diffusion_assets.models.loading import resolve_device

    with pytest.raises(GpuNotUsableError) as info:
        resolve_device(device)
    message = str(info.value)
    assert f"NVIDIA driver 580.95.05 (found by {faked_driver})" in message
    assert f"torch {torch.__version__} is a CPU-only build" in message
    assert f"make install TORCH_SPEC='{' '.join(CU130)}'" in message
    assert "set device: cpu" in message


def test_device_cpu_is_how_to_run_on_the_cpu_on_purpose(faked_driver):
    from diffusion_assets.models.loading import resolve_device

    assert resolve_device("cpu") == "cpu"


def test_without_a_driver_auto_still_means_the_cpu(tmp_path, monkeypatch):
    no_real_gpu()
    if find_nvidia_driver() is not None:
        pytest.skip("this machine has an NVIDIA driver")
    from diffusion_assets.models.loading import resolve_device

    assert resolve_device("auto") == "cpu"


def test_the_gpu_resource_refuses_before_any_model_loads(faked_driver, tmp_path, monkeypatch):
    from diffusion_assets.defs.resources import GpuResource, ProjectResource

    monkeypatch.setenv("DIFFUSION_ASSETS_ROOT", str(tmp_path))

    with pytest.raises(GpuNotUsableError, match="device 'auto' would run every step on the CPU"):
        GpuResource().provider(ProjectResource())
    assert GpuResource(device="cpu").provider(ProjectResource()).device == "cpu"


def test_the_captioner_refuses_before_its_weights_load(faked_driver):
    from diffusion_assets.captioning.captioner import load_captioner
    from diffusion_assets.captioning.spec import CaptionerSpec

    with pytest.raises(GpuNotUsableError):
        load_captioner(
            CaptionerSpec(mode="model", model="shapes-captioner"),
            models_dir=ROOT / "models",
            project_root=ROOT,
        )


# -- the Makefile's choice, end to end (make -n runs the detection, prints the install) ---------------


def _make_dry_run(path: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    if shutil.which("make") is None:
        pytest.skip("no make")
    return subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}", f"PYTHON={sys.executable}", *extra],
        cwd=ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_detection_needs_nothing_but_the_standard_library(tmp_path):
    """The Makefile runs it with the system python3, before the environment exists (-S: no site-packages)."""
    result = subprocess.run(
        [sys.executable, "-S", "-m", "diffusion_assets.torch_build", "pip-args", "2.13.0"],
        cwd=ROOT,
        env={**os.environ, "PATH": str(fake_nvidia_smi(tmp_path / "bin").parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == " ".join(CU130) + "\n"


def test_make_install_takes_the_cu130_wheels_next_to_a_driver(tmp_path):
    smi = fake_nvidia_smi(tmp_path / "bin")
    result = _make_dry_run(f"{smi.parent}{os.pathsep}{os.environ['PATH']}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"-m pip install -q {' '.join(CU130)}\n" in result.stdout
    assert "NVIDIA driver 580.95.05" in result.stderr  # the choice is said, not silent


def test_make_install_keeps_the_plain_pin_without_a_driver(tmp_path):
    if find_nvidia_driver() is not None:
        pytest.skip("this machine has an NVIDIA driver")
    result = _make_dry_run(os.environ["PATH"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "-m pip install -q torch==2.13.0\n" in result.stdout


def test_one_make_variable_overrides_the_choice(tmp_path):
    smi = fake_nvidia_smi(tmp_path / "bin")
    path = f"{smi.parent}{os.pathsep}{os.environ['PATH']}"
    result = _make_dry_run(path, tmp_path, "TORCH_SPEC=torch==2.13.0")
    assert result.returncode == 0, result.stderr
    assert "-m pip install -q torch==2.13.0\n" in result.stdout and "cu130" not in result.stdout


def test_make_install_stops_on_a_driver_too_old_for_every_build(tmp_path):
    smi = fake_nvidia_smi(tmp_path / "bin", "470.82.01")
    result = _make_dry_run(f"{smi.parent}{os.pathsep}{os.environ['PATH']}", tmp_path)
    assert result.returncode != 0
    assert "470.82.01 (found by" in result.stderr and "TORCH_SPEC='torch==2.13.0'" in result.stderr
    assert "pip install" not in result.stdout
