"""Training checkpoints: everything needed to continue a run as if it had never stopped.

``<out>/checkpoints/step-<n>/`` holds

- ``lora.safetensors``: the trainable (LoRA) parameters under their module names, float32;
- ``trainer.pt``: optimizer state, the training generator's RNG state, the GradScaler state (fp16);
- ``state.json``: the step, the config's ``training_hash`` and the loss rows so far.

The folder is assembled under a temporary name and renamed into place, so a crash leaves either a
complete checkpoint or none; ``latest_checkpoint`` ignores anything else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

_STEP = re.compile(r"^step-(\d+)$")


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    step: int
    weights: dict[str, torch.Tensor]
    optimizer: dict
    rng_state: torch.Tensor
    scaler: dict | None
    state: dict


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step-{step}"


def save_checkpoint(
    out_dir: str | Path,
    step: int,
    weights: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    scaler: torch.amp.GradScaler | None,
    state: dict,
    keep: int | None = None,
) -> Path:
    """Write checkpoint ``step`` atomically; with ``keep``, delete all but the newest ``keep`` checkpoints."""
    final = checkpoint_dir(out_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step}.", dir=final.parent))
    try:
        # 1. write every file into a hidden folder
        save_file(
            {k: v.detach().float().cpu().contiguous() for k, v in weights.items()},
            str(tmp / "lora.safetensors"),
        )
        trainer = {
            "optimizer": optimizer.state_dict(),
            "rng_state": generator.get_state(),
            "scaler": scaler.state_dict() if scaler is not None else None,
        }
        torch.save(trainer, tmp / "trainer.pt")
        (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=1))
        # 2. swap it in: a rerun that reaches the same step replaces the old folder
        if final.exists():
            old = final.with_name(f".old-{final.name}-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if keep:
        for path, _ in _complete(out_dir)[:-keep]:
            shutil.rmtree(path, ignore_errors=True)
    return final


def _complete(out_dir: str | Path) -> list[tuple[Path, int]]:
    """Complete checkpoints, oldest first."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP.match(path.name)
        if match and (path / "state.json").is_file():
            found.append((path, int(match.group(1))))
    return sorted(found, key=lambda item: item[1])


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``out_dir/checkpoints``, or None."""
    found = _complete(out_dir)
    return found[-1][0] if found else None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint folder written by ``save_checkpoint``."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    trainer = torch.load(path / "trainer.pt", weights_only=True)
    return Checkpoint(
        path=path,
        step=int(state["step"]),
        weights=load_file(str(path / "lora.safetensors")),
        optimizer=trainer["optimizer"],
        rng_state=trainer["rng_state"],
        scaler=trainer["scaler"],
        state=state,
    )


def restore(
    path: str | Path,
    training_hash: str,
    steps: int,
    trainable: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    scaler: torch.amp.GradScaler | None,
) -> tuple[int, list[dict], float]:
    """Load checkpoint ``path`` into the live parameters, optimizer, generator and scaler.

    Returns:
        ``(step, loss rows so far, started_at)``.

    Raises:
        ValueError: the checkpoint is of another recipe, is past ``steps``, or holds other parameters;
            the message says what to delete or change.
    """
    saved = load_checkpoint(path)
    if saved.state.get("training_hash") != training_hash:
        raise ValueError(
            f"{path} was trained with a different config; use another out_dir or delete "
            f"{Path(path).parent} to start over"
        )
    if saved.step > steps:
        raise ValueError(
            f"{path} is at step {saved.step}, past this run's {steps} steps; raise steps or use another out_dir"
        )
    if set(saved.weights) != set(trainable):
        raise ValueError(f"{path} holds other LoRA parameters than this model has; delete it to start over")
    with torch.no_grad():
        for name, param in trainable.items():
            param.copy_(saved.weights[name])
    optimizer.load_state_dict(saved.optimizer)
    generator.set_state(saved.rng_state)
    if scaler is not None and saved.scaler:
        scaler.load_state_dict(saved.scaler)
    return saved.step, list(saved.state["loss"]), float(saved.state["started_at"])
