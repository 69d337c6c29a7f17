"""Which torch build a machine needs, found without importing torch.

A machine with an NVIDIA GPU can end up with a torch that cannot see it: PyPI's linux-aarch64 torch
wheels were CPU-only up to 2.10 (PyTorch's CUDA builds for ARM, such as NVIDIA DGX Spark, came from
its own ``download.pytorch.org/whl/cu1xx`` indexes), and wherever pip is offered a ``+cpu`` wheel
(a CPU index, a ``find-links`` folder) that wheel wins ``torch==X``. ``device: auto`` would then run
every step on the CPU without a word. So:

* ``make install`` asks this module (``python3 -m diffusion_assets.torch_build pip-args <version>``)
  for the pip arguments of torch: with an NVIDIA driver, PyTorch's CUDA wheels of the pinned version
  that the driver runs (``cu130`` for r580+ drivers, ``cu126`` for older ones), else the plain pin;
* ``resolve_device`` calls :func:`refuse_cpu_fallback` at run start, which raises
  :class:`GpuNotUsableError` naming that install command when a driver is present but the installed
  torch cannot use it.

Standard library only: the Makefile runs it with the system Python before the environment exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROC_VERSION = Path("/proc/driver/nvidia/version")
DEV_DIR = Path("/dev")
PYTORCH_INDEX = "https://download.pytorch.org/whl"


@dataclass(frozen=True)
class CudaBuild:
    """One of PyTorch's CUDA wheel indexes and the oldest Linux driver its CUDA runtime accepts."""

    tag: str
    cuda: str
    min_driver: tuple[int, ...]

    @property
    def index_url(self) -> str:
        return f"{PYTORCH_INDEX}/{self.tag}"


CUDA_BUILDS = (
    # CUDA 13.0 release notes, table 3: Linux driver >= 580.65.06 (DGX Spark ships r580)
    CudaBuild("cu130", "13.0", (580, 65, 6)),
    # CUDA 12.x minor-version compatibility: any driver >= 525.60.13
    CudaBuild("cu126", "12.6", (525, 60, 13)),
)
"""Newest first; the install picks the first one the driver runs."""


class GpuNotUsableError(RuntimeError):
    """An NVIDIA driver is present but torch cannot use it, so a GPU run would silently be a CPU run."""


class UnsupportedDriverError(RuntimeError):
    """The NVIDIA driver is older than every CUDA build of torch that the install could pick."""


@dataclass(frozen=True)
class NvidiaDriver:
    """An NVIDIA driver this process can reach: its version (``None`` when unreadable) and the probe."""

    version: str | None
    found_by: str

    @property
    def version_tuple(self) -> tuple[int, ...] | None:
        return tuple(int(part) for part in self.version.split(".")) if self.version else None

    def describe(self) -> str:
        return f"NVIDIA driver {self.version or '(version unknown)'} (found by {self.found_by})"


_PROC_VERSION_RE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)")
_VERSION_RE = re.compile(r"^\d+(?:\.\d+)+$")


def find_nvidia_driver(
    proc_version: Path = PROC_VERSION,
    dev_dir: Path = DEV_DIR,
    nvidia_smi: str = "nvidia-smi",
    path: str | None = None,
    timeout_s: float = 20.0,
) -> NvidiaDriver | None:
    """The NVIDIA driver this process can reach, or ``None``; no torch, no CUDA library is loaded.

    1. The kernel module's ``proc_version`` file (``/proc/driver/nvidia/version``, whose ``NVRM
       version:`` line holds e.g. ``Open Kernel Module for aarch64  580.95.05``) together with its
       control device ``dev_dir/nvidiactl``: a container started without GPUs on a GPU host sees
       the first but not the second, and cannot reach the GPU.
    2. Else ``nvidia_smi`` found on ``path`` (default ``$PATH``) answering
       ``--query-gpu=driver_version`` (it creates missing device nodes itself). One that fails
       ("couldn't communicate with the NVIDIA driver") counts as no driver.
    """
    if proc_version.exists() and (dev_dir / "nvidiactl").exists():
        try:
            match = _PROC_VERSION_RE.search(proc_version.read_text(errors="replace"))
        except OSError:
            match = None
        return NvidiaDriver(match.group(1) if match else None, str(proc_version))
    executable = shutil.which(nvidia_smi, path=path)
    if executable is None:
        return None
    try:
        answer = subprocess.run(
            [executable, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = answer.stdout.strip().splitlines()
    if answer.returncode != 0 or not lines:
        return None
    version = lines[0].strip()
    return NvidiaDriver(version if _VERSION_RE.match(version) else None, executable)


@dataclass(frozen=True)
class TorchChoice:
    """The pip arguments that install torch on one machine, and why (``build`` None: the plain pin)."""

    args: tuple[str, ...]
    build: CudaBuild | None
    reason: str

    def command_line(self) -> str:
        return " ".join(self.args)

    def make_command(self) -> str:
        return f"make install TORCH_SPEC='{self.command_line()}'"


def choose_torch(version: str, driver: NvidiaDriver | None) -> TorchChoice:
    """pip arguments for torch ``version`` (e.g. ``2.13.0``) on a machine with ``driver``.

    No driver: the plain pin ``torch==<version>``. A driver: the exact CUDA build
    ``torch==<version>+cu1xx`` from PyTorch's index of the newest build in :data:`CUDA_BUILDS` the
    driver runs (an unknown version is taken as r580+); the local version label means no ``+cpu``
    wheel can satisfy it, so pip either installs that build or fails saying so.

    Raises:
        UnsupportedDriverError: the driver is older than every build (names the fix).
    """
    if driver is None:
        return TorchChoice((f"torch=={version}",), None, "no NVIDIA driver found: the plain pin")
    found = driver.version_tuple
    for build in CUDA_BUILDS:
        if found is None or found >= build.min_driver:
            reason = f"{driver.describe()}: PyTorch's CUDA {build.cuda} wheels"
            args = (f"torch=={version}+{build.tag}", "--extra-index-url", build.index_url)
            return TorchChoice(args, build, reason)
    oldest = CUDA_BUILDS[-1]
    raise UnsupportedDriverError(
        f"{driver.describe()} is older than every CUDA build of torch {version} (CUDA {oldest.cuda} needs "
        f"{'.'.join(map(str, oldest.min_driver))} or newer). Upgrade the driver, or install the CPU build "
        f"with make install TORCH_SPEC='torch=={version}' and set device: cpu."
    )


def refuse_cpu_fallback(
    device: str,
    torch_version: str,
    torch_cuda: str | None,
    driver: NvidiaDriver | None,
    cause: str | None = None,
) -> None:
    """Raise when ``device`` (``auto`` or ``cuda…``) would not get the GPU that ``driver`` drives.

    ``torch_version`` and ``torch_cuda`` are ``torch.__version__`` and ``torch.version.cuda`` (None
    for a CPU-only build); ``cause`` is what initialising CUDA raised, if anything. Without a
    driver there is no GPU to miss, and this returns.

    Raises:
        GpuNotUsableError: naming the driver, the installed build, the install command of the
            build this driver runs, and ``device: cpu`` as the way to run on the CPU on purpose.
    """
    if driver is None:
        return
    base_version = torch_version.split("+")[0]
    if device == "auto":
        outcome = "device 'auto' would run every step on the CPU (never a silent CPU fallback)"
    else:
        outcome = f"device '{device}' cannot be used"
    if torch_cuda is None:
        problem = f"torch {torch_version} is a CPU-only build (torch.version.cuda is None)"
    else:
        problem = (
            f"torch {torch_version} (CUDA {torch_cuda}) cannot use it: torch.cuda.is_available() is False"
        )
        if cause:
            problem += f" ({cause.strip().splitlines()[0]})"
    try:
        choice = choose_torch(base_version, driver)
    except UnsupportedDriverError as too_old:
        fix = str(too_old)
    else:
        # CUDA minor-version compatibility: any 13.x runtime runs where 13.0's does
        cuda_major = torch_cuda.split(".")[0] if torch_cuda else None
        if choice.build is not None and choice.build.cuda.split(".")[0] == cuda_major:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            fix = (
                "torch's CUDA build already matches the driver, so the GPU itself is unreachable: check "
                f"`nvidia-smi` and CUDA_VISIBLE_DEVICES ({'unset' if visible is None else repr(visible)})."
            )
        else:
            fix = f"install the CUDA build this driver runs:\n    {choice.make_command()}"
    raise GpuNotUsableError(
        f"{driver.describe()}, but {problem}; {outcome}.\n"
        f"  Fix: {fix}\n"
        "  To run on the CPU on purpose, set device: cpu (the gpu and captioner resources' `device`)."
    )


def main(argv: list[str] | None = None) -> int:
    """``pip-args <version>``: print this machine's pip arguments for torch (the reason on stderr)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "pip-args":
        print("usage: python -m diffusion_assets.torch_build pip-args <torch version>", file=sys.stderr)
        return 2
    try:
        choice = choose_torch(argv[1], find_nvidia_driver())
    except UnsupportedDriverError as error:
        print(f"torch: {error}", file=sys.stderr)
        return 1
    if choice.build is not None:
        print(
            f"torch: {choice.reason} ({choice.command_line()}); "
            f"another build: make install TORCH_SPEC='torch=={argv[1]}'",
            file=sys.stderr,
        )
    print(choice.command_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
