"""Tiny random-weight models: build offline, reload offline, generate at the minimum size, reproducibly."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import (
    ControlNetModel,
    DiffusionPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLControlNetPipeline,
)
from PIL import Image
from transformers import pipeline

from diffusion_assets.models.tiny import TINY_CALL_KWARGS, TINY_KINDS, TINY_MIN_SIZE, build_tiny
from diffusion_assets.models.tiny_tokenizers import build_clip_tokenizer, build_t5_tokenizer

PIPELINE_CLASSES = {
    "sd15": "StableDiffusionPipeline",
    "sdxl-base": "StableDiffusionXLPipeline",
    "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline",
    "flux-schnell": "FluxPipeline",
    "flux-dev": "FluxPipeline",
}
TEXT_TO_IMAGE = {"sd15": {}, "sdxl-base": {}, "flux-schnell": {"guidance_scale": 0.0}, "flux-dev": {}}
PROMPT = "a photo of a red cat sitting on a wooden table, soft light"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hub offline mode, and any network connection fails, so a hidden download cannot pass a test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access in a tiny-model test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads; on a shared 2-core machine a second thread made runs 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every kind built once with seed 0, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("tiny")
    return {kind: build_tiny(kind, root / kind) for kind in TINY_KINDS}


def _generate(pipe: DiffusionPipeline, kind: str, seed: int = 0, **kwargs: object) -> np.ndarray:
    size = TINY_MIN_SIZE[kind]
    generator = torch.Generator("cpu").manual_seed(seed)
    kwargs = {"prompt": PROMPT, **TINY_CALL_KWARGS.get(kind, {}), **kwargs}
    image = pipe(num_inference_steps=2, height=size, width=size, generator=generator, **kwargs).images[0]
    return np.asarray(image)


def _load(folder: Path) -> DiffusionPipeline:
    pipe = DiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_build_writes_small_folder_with_info(kind: str, built: dict[str, Path]) -> None:
    folder = built[kind]
    info = json.loads((folder / "tiny_info.json").read_text())
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert info == {
        "kind": kind,
        "seed": 0,
        "min_size": TINY_MIN_SIZE[kind],
        "call_kwargs": TINY_CALL_KWARGS.get(kind, {}),
    }
    assert size < 5_000_000


@pytest.mark.parametrize("kind", PIPELINE_CLASSES)
def test_pipeline_folder_loads_offline_as_its_class(kind: str, built: dict[str, Path]) -> None:
    assert type(_load(built[kind])).__name__ == PIPELINE_CLASSES[kind]


@pytest.mark.parametrize("kind", TEXT_TO_IMAGE)
def test_generates_image_at_min_size(kind: str, built: dict[str, Path]) -> None:
    image = _generate(_load(built[kind]), kind, **TEXT_TO_IMAGE[kind])
    assert image.shape == (TINY_MIN_SIZE[kind], TINY_MIN_SIZE[kind], 3)
    assert image.std() > 0


@pytest.mark.parametrize("kind", TEXT_TO_IMAGE)
def test_same_seed_gives_identical_bytes(kind: str, built: dict[str, Path]) -> None:
    pipe = _load(built[kind])
    first, second, other = (_generate(pipe, kind, seed=s, **TEXT_TO_IMAGE[kind]) for s in (0, 0, 1))
    assert first.tobytes() == second.tobytes()
    assert first.tobytes() != other.tobytes()


@pytest.mark.parametrize("kind", TINY_KINDS)
def test_two_builds_have_identical_files(kind: str, built: dict[str, Path], tmp_path: Path) -> None:
    again = build_tiny(kind, tmp_path / kind)
    files = sorted(p.relative_to(built[kind]) for p in built[kind].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((built[kind] / f).read_bytes() == (again / f).read_bytes() for f in files)


def test_another_seed_gives_other_weights(built: dict[str, Path], tmp_path: Path) -> None:
    other = build_tiny("sd15", tmp_path / "sd15", seed=1)
    weights = Path("unet/diffusion_pytorch_model.safetensors")
    assert (built["sd15"] / weights).read_bytes() != (other / weights).read_bytes()


def test_sdxl_refiner_shares_vae_and_text_encoder_2_with_base(built: dict[str, Path]) -> None:
    for component in ("vae", "text_encoder_2"):
        base_files = sorted((built["sdxl-base"] / component).glob("*.safetensors"))
        refiner_files = sorted((built["sdxl-refiner"] / component).glob("*.safetensors"))
        assert [f.read_bytes() for f in base_files] == [f.read_bytes() for f in refiner_files]


def test_sdxl_refiner_finishes_base_latents(built: dict[str, Path]) -> None:
    base, refiner = _load(built["sdxl-base"]), _load(built["sdxl-refiner"])
    size, generator = TINY_MIN_SIZE["sdxl-base"], torch.Generator("cpu").manual_seed(0)
    common = {"prompt": PROMPT, "num_inference_steps": 4, "generator": generator}
    latents = base(**common, height=size, width=size, denoising_end=0.8, output_type="latent").images
    image = refiner(**common, image=latents, denoising_start=0.8).images[0]
    assert latents.shape == (1, 4, size // 8, size // 8)
    assert image.size == (size, size)


@pytest.mark.parametrize(
    ("kind", "base_kind", "pipeline_class"),
    [
        ("controlnet-sd15", "sd15", StableDiffusionControlNetPipeline),
        ("controlnet-sdxl", "sdxl-base", StableDiffusionXLControlNetPipeline),
    ],
)
def test_controlnet_follows_control_image(
    kind: str, base_kind: str, pipeline_class: type[DiffusionPipeline], built: dict[str, Path]
) -> None:
    controlnet = ControlNetModel.from_pretrained(built[kind])
    pipe = pipeline_class.from_pretrained(built[base_kind], controlnet=controlnet)
    pipe.set_progress_bar_config(disable=True)
    size = TINY_MIN_SIZE[kind]
    black, white = (Image.new("RGB", (size, size), (v, v, v)) for v in (0, 255))
    on_black, on_white = (_generate(pipe, kind, image=control) for control in (black, white))
    assert on_black.shape == (size, size, 3)
    assert on_black.tobytes() != on_white.tobytes()


@pytest.mark.parametrize(("kind", "guidance_changes_output"), [("flux-dev", True), ("flux-schnell", False)])
def test_only_flux_dev_embeds_guidance(
    kind: str, guidance_changes_output: bool, built: dict[str, Path]
) -> None:
    pipe = _load(built[kind])
    low, high = (_generate(pipe, kind, guidance_scale=g) for g in (0.0, 5.0))
    assert (low.tobytes() != high.tobytes()) == guidance_changes_output


@pytest.mark.parametrize("size", [(16, 16), (40, 24)])
def test_depth_estimator_returns_map_of_input_size(size: tuple[int, int], built: dict[str, Path]) -> None:
    estimate = pipeline("depth-estimation", model=str(built["depth-estimator"]))
    result = estimate(Image.new("RGB", size, (30, 120, 200)))
    assert result["depth"].size == size
    assert tuple(result["predicted_depth"].shape) == size[::-1]


def test_long_prompt_is_truncated_to_77_tokens(built: dict[str, Path]) -> None:
    image = _generate(_load(built["sd15"]), "sd15", prompt=" ".join([PROMPT] * 10))
    assert image.shape == (16, 16, 3)


@pytest.mark.parametrize("pad_token", ["<|endoftext|>", "!"])
def test_clip_tokenizer_encodes_any_text_without_unknowns(pad_token: str) -> None:
    tokenizer = build_clip_tokenizer(pad_token)
    ids = tokenizer("Café 東京, 42 CATS!! " * 20, truncation=True, padding="max_length").input_ids
    assert len(ids) == 77
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.convert_tokens_to_ids(pad_token) == tokenizer.pad_token_id
    assert len(tokenizer("a photo of a cat").input_ids) == 2 + 5  # common words are single tokens


def test_t5_tokenizer_keeps_t5_special_ids() -> None:
    tokenizer = build_t5_tokenizer()
    ids = tokenizer("a photo of a cat", padding="max_length", max_length=8).input_ids
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert ids == [*tokenizer.convert_tokens_to_ids(["▁a", "▁photo", "▁of", "▁a", "▁cat"]), 1, 0, 0]


def test_unknown_kind_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sdxl-base"):
        build_tiny("sd3", tmp_path)
