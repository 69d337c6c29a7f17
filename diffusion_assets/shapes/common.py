"""Helpers shared by the shapes training stages: image tensors, loss logs, schedules."""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("diffusion_assets.shapes")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (n, H, W, 3) -> float (n, 3, H, W) in [-1, 1], the range diffusers' VAEs expect."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (n, 3, H, W) in [-1, 1] -> uint8 (n, H, W, 3)."""
    scaled = (images.detach().cpu().clamp(-1, 1) + 1) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 arrays."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.1) -> float:
    """Learning-rate multiplier: linear warm-up, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def setup_torch(seed: int, threads: int) -> None:
    """Seed torch and set its CPU threads (see ``TrainConfig.threads`` for why 1 is the default)."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


@dataclass
class LossLog:
    """Loss values of one stage, with wall-clock seconds since the stage began.

    ``cpu_seconds`` is the process's CPU time (all threads); on a shared machine it is the fairer cost,
    since wall-clock time also counts other jobs' turns on the cores.
    """

    stage: str
    rows: list[tuple[int, float, float]] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)
    cpu_start: float = field(default_factory=time.process_time)
    paused_wall: float = 0.0
    paused_cpu: float = 0.0

    def add(self, step: int, loss: float) -> None:
        """Record one value and log it."""
        self.rows.append((step, loss, self.seconds))
        log.info("%s step %d loss %.5f (%.0f s)", self.stage, step, loss, self.seconds)

    @property
    def seconds(self) -> float:
        """Wall-clock training seconds so far, excluding ``paused`` blocks."""
        return time.perf_counter() - self.start - self.paused_wall

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds so far, excluding ``paused`` blocks."""
        return time.process_time() - self.cpu_start - self.paused_cpu

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside (evaluation callbacks) does not count as training time."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.paused_wall += time.perf_counter() - wall
            self.paused_cpu += time.process_time() - cpu

    def timing(self) -> dict[str, float]:
        """``train_seconds`` (wall) and ``cpu_seconds`` for a stage's metrics."""
        return {"train_seconds": self.seconds, "cpu_seconds": self.cpu_seconds}

    def first_last(self, k: int = 5) -> tuple[float, float]:
        """Mean of the first and of the last ``k`` logged losses (fewer on short runs, never overlapping)."""
        losses = [r[1] for r in self.rows]
        k = max(1, min(k, len(losses) // 2))
        return float(np.mean(losses[:k])), float(np.mean(losses[-k:]))

    def write_csv(self, path: Path) -> None:
        """Write ``stage, step, loss, seconds`` rows."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["stage", "step", "loss", "seconds"])
            writer.writerows((self.stage, *row) for row in self.rows)
