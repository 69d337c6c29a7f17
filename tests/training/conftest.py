"""Fixtures for the LoRA trainer: a tiny SD 1.5 from configs, a 16-image shapes dataset, one trained run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from diffusion_assets.training.config import LoraLineage, LoraTrainConfig

PROMPT = "a red circle on a black background, in sks outline style"


@dataclass(frozen=True)
class Trained:
    result: object
    config: LoraTrainConfig
    lineage: LoraLineage
    out_dir: Path


def lineage(**overrides) -> LoraLineage:
    values = {
        "dataset": "outline",
        "dataset_version": "v1",
        "base_model_id": "tiny/sd15",
        "trigger_word": "sks",
    }
    return LoraLineage(**{**values, **overrides})


def config(**overrides) -> LoraTrainConfig:
    """A config that learns in a few seconds on the tiny model: 32 px, rank 4, a high learning rate."""
    values = {
        "rank": 4,
        "alpha": 8,
        "learning_rate": 1e-2,
        "steps": 8,
        "batch_size": 4,
        "resolution": 32,
        "checkpoint_every": 0,
    }
    return LoraTrainConfig(**{**values, **overrides})


@pytest.fixture(scope="session")
def sd15_dir(tmp_path_factory) -> Path:
    from diffusion_assets.models.tiny import build_tiny

    return build_tiny("sd15", tmp_path_factory.mktemp("sd15"))


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    from diffusion_assets.training.synthetic import write_shapes_dataset

    return write_shapes_dataset(tmp_path_factory.mktemp("outline"), n=16, seed=0, style="outlined")


@pytest.fixture(scope="session")
def trained(sd15_dir, dataset_dir, tmp_path_factory) -> Trained:
    """One 60-step run shared by the read-only tests (loss, header, loading, applies check)."""
    from diffusion_assets.training.lora import train_lora

    out = tmp_path_factory.mktemp("runs") / "outline-lora"
    cfg = config(steps=60, batch_size=8)
    result = train_lora(dataset_dir, sd15_dir, out, cfg, lineage(dagster_run_id="run-123"))
    return Trained(result, cfg, lineage(dagster_run_id="run-123"), out)


class Records(logging.Handler):
    """Collects records of loggers that do not propagate to the root (diffusers, transformers)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def library_warnings():
    """WARNING+ records from diffusers, peft and transformers during the test."""
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("diffusers", "peft", "transformers")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)
