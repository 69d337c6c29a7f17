"""train_lora: learning, resuming, caching, validation images, precision options."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from diffusion_assets.training.lora import train_lora
from diffusion_assets.training.validation import validation_filename
from tests.training.conftest import PROMPT, config, lineage


def test_loss_falls_over_training(trained):
    loss = pq.read_table(trained.result.loss_path).column("loss").to_pylist()
    assert len(loss) == trained.config.steps
    first, last = sum(loss[:10]) / 10, sum(loss[-10:]) / 10
    assert last < 0.95 * first, (first, last)


def test_loss_file_has_one_row_per_step(trained):
    table = pq.read_table(trained.result.loss_path)
    assert table.column_names == ["step", "loss", "lr", "seconds"]
    assert table.column("step").to_pylist() == list(range(1, trained.config.steps + 1))
    assert set(table.column("lr").to_pylist()) == {trained.config.learning_rate}


def test_only_lora_weights_are_saved(trained):
    tensors = load_file(trained.result.weights_path)
    # kohya's layout: per module lora_down, lora_up and a scalar alpha (training/metadata.kohya_layers)
    parts = {key.split(".", 1)[1] for key in tensors}
    assert parts == {"lora_down.weight", "lora_up.weight", "alpha"}
    assert all(key.startswith("lora_unet_") for key in tensors)
    assert {t.dtype for t in tensors.values()} == {torch.float32}
    modules = {key.split(".", 1)[0] for key in tensors}
    assert all(f"{m}.{p}" in tensors for m in modules for p in parts)


class Interrupt(Exception):
    pass


def _raise_after(step_to_fail: int):
    def callback(step: int, loss: float) -> None:
        if step == step_to_fail:
            raise Interrupt(step)

    return callback


def test_interrupted_run_resumes_to_identical_weights(sd15_dir, dataset_dir, tmp_path):
    # latents="sample" and min-SNR exercise every draw of the checkpointed generator
    cfg = config(steps=10, checkpoint_every=4, latents="sample", min_snr_gamma=5.0)
    straight = train_lora(dataset_dir, sd15_dir, tmp_path / "straight", cfg, lineage())
    with pytest.raises(Interrupt):
        train_lora(dataset_dir, sd15_dir, tmp_path / "resumed", cfg, lineage(), callback=_raise_after(6))
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step-4"]
    resumed = train_lora(dataset_dir, sd15_dir, tmp_path / "resumed", cfg, lineage())

    assert resumed.resumed_from_step == 4
    a, b = load_file(straight.weights_path), load_file(resumed.weights_path)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    loss_a = pq.read_table(straight.loss_path).column("loss").to_pylist()
    loss_b = pq.read_table(resumed.loss_path).column("loss").to_pylist()
    assert loss_a == loss_b


def test_resume_with_another_recipe_fails_loudly(sd15_dir, dataset_dir, tmp_path):
    train_lora(dataset_dir, sd15_dir, tmp_path / "run", config(steps=2, checkpoint_every=1), lineage())
    with pytest.raises(ValueError, match="different config"):
        train_lora(dataset_dir, sd15_dir, tmp_path / "run", config(steps=4, rank=2), lineage())


def test_checkpoints_hold_weights_optimizer_rng_and_step(sd15_dir, dataset_dir, tmp_path):
    from diffusion_assets.training.checkpoints import latest_checkpoint, load_checkpoint

    train_lora(dataset_dir, sd15_dir, tmp_path / "run", config(steps=4, checkpoint_every=2), lineage())
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step-2", "step-4"]
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert state.step == 4 and state.weights and state.optimizer["state"]
    assert state.rng_state.dtype == torch.uint8 and len(state.state["loss"]) == 4


def test_second_run_reuses_the_cache(sd15_dir, dataset_dir, tmp_path, monkeypatch):
    from diffusers import AutoencoderKL

    first = train_lora(dataset_dir, sd15_dir, tmp_path / "a", config(steps=1), lineage())
    assert first.cache_built and first.cache_path.parent.parent == tmp_path / "cache"
    mtime = os.stat(first.cache_path).st_mtime_ns
    calls = []
    original = AutoencoderKL.encode
    monkeypatch.setattr(
        AutoencoderKL, "encode", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    second = train_lora(dataset_dir, sd15_dir, tmp_path / "b", config(steps=1, learning_rate=1e-3), lineage())
    assert not second.cache_built and second.cache_path == first.cache_path
    assert calls == [] and os.stat(first.cache_path).st_mtime_ns == mtime


def test_cache_of_an_edited_dataset_with_the_same_version_is_refused(sd15_dir, dataset_dir, tmp_path):
    import shutil

    train_lora(dataset_dir, sd15_dir, tmp_path / "a", config(steps=1), lineage())
    edited = shutil.copytree(dataset_dir, tmp_path / "edited")
    meta = edited / "train" / "metadata.jsonl"
    meta.write_text(meta.read_text().replace("outline style", "outline style, bold"))
    with pytest.raises(ValueError, match="new version"):
        train_lora(edited, sd15_dir, tmp_path / "b", config(steps=1), lineage())


def test_validation_image_depends_only_on_its_prompt_and_seed(sd15_dir, dataset_dir, tmp_path):
    other = "a blue square on a white background, in sks outline style"
    common = {"steps": 2, "validation_every": 2, "validation_steps": 3}
    wide = config(**common, validation_prompts=(other, PROMPT), validation_seeds=(0, 7))
    narrow = config(**common, validation_prompts=(PROMPT,), validation_seeds=(7,))
    a = train_lora(dataset_dir, sd15_dir, tmp_path / "wide", wide, lineage())
    b = train_lora(dataset_dir, sd15_dir, tmp_path / "narrow", narrow, lineage())

    assert [d.name for d in a.validation_dirs] == ["step-2"]
    assert len(list(a.validation_dirs[0].glob("*.png"))) == 4
    name = validation_filename(PROMPT, 7)
    assert (a.validation_dirs[0] / name).read_bytes() == (b.validation_dirs[0] / name).read_bytes()
    assert (a.validation_dirs[0] / name).read_bytes() != (
        a.validation_dirs[0] / validation_filename(PROMPT, 0)
    ).read_bytes()


@pytest.mark.parametrize(("mixed_precision", "gradient_checkpointing"), [("bf16", False), ("no", True)])
def test_precision_and_checkpointing_options_train(
    sd15_dir, dataset_dir, tmp_path, mixed_precision, gradient_checkpointing
):
    cfg = config(steps=2, mixed_precision=mixed_precision, gradient_checkpointing=gradient_checkpointing)
    result = train_lora(dataset_dir, sd15_dir, tmp_path / "run", cfg, lineage())
    losses = pq.read_table(result.loss_path).column("loss").to_pylist()
    assert all(0 < value < 100 for value in losses)
    assert {t.dtype for t in load_file(result.weights_path).values()} == {torch.float32}


def test_raising_steps_extends_a_finished_run_as_if_it_had_been_longer(sd15_dir, dataset_dir, tmp_path):
    longer = train_lora(dataset_dir, sd15_dir, tmp_path / "six", config(steps=6), lineage())
    train_lora(dataset_dir, sd15_dir, tmp_path / "extended", config(steps=4), lineage())
    extended = train_lora(dataset_dir, sd15_dir, tmp_path / "extended", config(steps=6), lineage())
    assert extended.resumed_from_step == 4
    a, b = load_file(longer.weights_path), load_file(extended.weights_path)
    assert all(torch.equal(a[k], b[k]) for k in a)
