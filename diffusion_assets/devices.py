"""Which GPU a run uses: a host-wide lease, one holder per CUDA device.

Dagster's ``gpu`` pool says *how many* GPU steps may run at once (one slot per GPU); it does not say
*which* GPU each takes, and ``device: auto`` alone means the first one for everybody. So every
process that puts a model on a CUDA device first leases one: a ``flock`` on
``<leases>/cuda-<N>.lock``, one file per device, held until the run's resources are torn down (the
kernel drops it however the process dies). ``auto`` / ``cuda`` take the first free device of the
host's list; ``cuda:N`` waits for device N. Generation, captioning, training and evaluation lease
through the same files, so a captioner never lands on the GPU a generation run holds. A process may
lease a device it already holds again (one run's steps run in one process, on one GPU).

Lease files are host-local (a GPU belongs to one host): ``DIFFUSION_ASSETS_DEVICE_LEASES``, default
``<tmp>/diffusion_assets-<uid>/devices``. ``DIFFUSION_ASSETS_GPUS`` (e.g. ``0,1``) lists the CUDA
indices this host lends to the project, default every device torch sees; it is also how the tests
play a two-GPU host on a CPU.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from diffusion_assets.files import BusyError, exclusive

GPUS_ENV = "DIFFUSION_ASSETS_GPUS"
LEASES_ENV = "DIFFUSION_ASSETS_DEVICE_LEASES"
LEASE_WAIT = 3600.0
"""Seconds a run waits for a GPU before it fails (the pool normally makes the wait short)."""
_POLL = 0.25


def leases_dir() -> Path:
    """The host-local folder of lease files."""
    default = Path(tempfile.gettempdir()) / f"diffusion_assets-{os.getuid()}" / "devices"
    return Path(os.environ.get(LEASES_ENV) or default)


def cuda_indices() -> list[int]:
    """The CUDA device indices this host lends: ``DIFFUSION_ASSETS_GPUS``, else all torch sees.

    Raises:
        ValueError: ``DIFFUSION_ASSETS_GPUS`` is not a comma-separated list of indices.
    """
    listed = os.environ.get(GPUS_ENV, "").strip()
    if listed:
        try:
            return [int(part) for part in listed.split(",") if part.strip()]
        except ValueError as exc:
            raise ValueError(f"{GPUS_ENV}={listed!r}: give CUDA device indices, e.g. 0,1") from exc
    import torch  # noqa: PLC0415

    return list(range(torch.cuda.device_count()))


def _index(device: str) -> int | None:
    """``cuda:N`` → N; ``cuda`` → None (any); raises for other strings."""
    name, _, index = device.partition(":")
    if name != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"not a CUDA device: {device!r} (cuda or cuda:N)")
    return int(index) if index else None


@contextmanager
def lease(
    device: str,
    holder: str = "",
    *,
    indices: Sequence[int] | None = None,
    wait: float = LEASE_WAIT,
    log: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """Hold a CUDA device for the duration of the block; yields it as ``cuda:N``.

    Args:
        device: a resolved device: ``cuda`` (the first free of ``indices``) or ``cuda:N`` (that one);
            anything else (``cpu``, ``mps``) is yielded unchanged and leases nothing.
        holder: who holds it (a run id), shown to whoever waits.
        indices: the host's CUDA indices (default ``cuda_indices()``).
        wait: seconds to wait for a free device before failing.
        log: called once, with who holds what, when the lease has to wait.

    Raises:
        BusyError: no device came free within ``wait`` seconds.
        ValueError: ``cuda:N`` is not one of the host's ``indices``.
    """
    if not device.startswith("cuda"):
        yield device
        return
    wanted, lent = _index(device), list(cuda_indices() if indices is None else indices)
    if wanted is not None and wanted not in lent:
        raise ValueError(f"device {device} is not one this host lends ({GPUS_ENV}: {lent})")
    candidates = lent if wanted is None else [wanted]
    if not candidates:
        raise ValueError(f"no CUDA device to lease ({GPUS_ENV} or torch lists none)")
    deadline, said = time.monotonic() + wait, False
    while True:
        held = []
        for index in candidates:
            stack = ExitStack()
            try:
                stack.enter_context(
                    exclusive(leases_dir() / f"cuda-{index}.lock", f"GPU cuda:{index}", holder)
                )
            except BusyError as exc:
                held.append(exc.holder)
                continue
            with stack:
                yield f"cuda:{index}"
            return
        if time.monotonic() >= deadline:
            raise BusyError(f"no GPU came free in {wait:g} s: " + "; ".join(held))
        if not said and log is not None:
            names = ", ".join(f"cuda:{i} held by {who}" for i, who in zip(candidates, held, strict=True))
            log(f"waiting for a GPU: {names}")
            said = True
        time.sleep(_POLL)


class DeviceLeases:
    """The leases of one run's resource: taken on first use, released at teardown (or exit)."""

    def __init__(self, holder: str = "") -> None:
        self.holder = holder
        self._stack = ExitStack()
        self._held: dict[str, str] = {}

    def device(self, requested: str, log: Callable[[str], None] | None = None) -> str:
        """The device to use for ``requested`` (``auto``, ``cuda``, ``cuda:N``, ``mps``, ``cpu``):
        resolved (``models.loading.resolve_device``), and leased when it is a CUDA device."""
        from diffusion_assets.models.loading import resolve_device  # noqa: PLC0415

        resolved = resolve_device(requested)
        if not resolved.startswith("cuda"):
            return resolved
        wanted = "cuda" if requested in ("auto", "cuda") else resolved  # any free one, or that one
        if wanted not in self._held:
            self._held[wanted] = self._stack.enter_context(lease(wanted, self.holder, log=log))
        return self._held[wanted]

    def close(self) -> None:
        self._stack.close()
        self._held.clear()
