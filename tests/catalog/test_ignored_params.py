"""Parameter combinations a pipeline would silently ignore or mis-run are errors naming the field.

Each rule is diffusers' own (0.42):
- SD / SDXL / ControlNet: ``do_classifier_free_guidance = guidance_scale > 1`` (the pipelines'
  ``do_classifier_free_guidance`` property), so a negative prompt at guidance <= 1 is unused;
- Flux: ``do_true_cfg = true_cfg_scale > 1 and has_neg_prompt`` (``FluxPipeline.__call__``);
- SDXL base + refiner: the base runs the timesteps ``>= round(T - switch * T)`` and the refiner the rest
  (``StableDiffusionXLPipeline`` step 8.1, ``StableDiffusionXLImg2ImgPipeline.get_timesteps``);
- the shapes renderer draws the prompt in one pass: no sampler, steps, guidance or adapter.
"""

from __future__ import annotations

import itertools

import pytest

from diffusion_assets.catalog import refiner
from diffusion_assets.catalog.load import CatalogError, load_catalog

CASES = [
    # (case, defaults, entry fields, field named, words)
    (
        "flux true cfg 1",
        "model: flux-dev",
        "negative_prompt: blurry, true_cfg_scale: 1.0",
        "negative_prompt",
        "runs no true CFG",
    ),
    (
        "flux no cfg",
        "model: flux-dev",
        "negative_prompt: blurry",
        "negative_prompt",
        "no classifier-free guidance",
    ),
    ("schnell true cfg 1", "model: flux-schnell", "true_cfg_scale: 1", "true_cfg_scale", "has no effect"),
    (
        "sd guidance 1",
        "model: sd15",
        "negative_prompt: blurry, guidance: 1",
        "negative_prompt",
        "guidance 1 turns",
    ),
    (
        "sdxl guidance 0.5",
        "model: sdxl-base, negative_prompt: blurry",
        "guidance: 0.5",
        "negative_prompt",
        "only above 1",
    ),
    (
        "controlnet guidance 0",
        "model: sdxl+controlnet-canny",
        "negative_prompt: x, guidance: 0, control_image: c.png",
        "negative_prompt",
        "would be ignored",
    ),
    (
        "controlnet scale without controlnet",
        "model: sdxl-base",
        "controlnet_scale: 0.5",
        "controlnet_scale",
        "ignored",
    ),
    ("renderer scheduler", "model: shapes-render", "scheduler: euler", "scheduler", "without a sampler"),
    ("renderer steps", "model: shapes-render", "steps: 30", "steps", "one pass"),
    ("renderer lora", "model: shapes-render", "lora: {path: c.png}", "lora", "no weights"),
    # the issue's example: SDXL's Euler schedule for 2 steps is [501, 1]; the switch at 0.3 cuts at 700
    (
        "base runs nothing",
        "model: sdxl-base+refiner",
        "steps: 2, refiner_switch: 0.3",
        "refiner_switch",
        "base model runs no step",
    ),
    ("one step", "model: sdxl-base+refiner", "steps: 1", "steps", "runs no step"),
    (
        "trailing, late switch",
        "model: sdxl-base+refiner",
        "steps: 2, refiner_switch: 0.9, scheduler: dpmpp_2m",
        "refiner_switch",
        "refiner runs no step",
    ),
]


@pytest.mark.parametrize(("case", "defaults", "fields", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_ignored_or_misrun_parameters_are_errors(project, case, defaults, fields, field, words):
    from PIL import Image

    Image.new("RGB", (64, 64)).save(project / "prompts" / "c.png")
    path = project / "prompts" / "p.yaml"
    path.write_text(f"defaults: {{{defaults}}}\nentries: [{{id: a, prompt: a red circle, {fields}}}]\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    issues = [i for i in info.value.issues if i.field == field and i.entry == "entry 'a' (entries[0])"]
    assert any(words in i.message for i in issues), str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        "negative_prompt: blurry, true_cfg_scale: 1.5",  # flux-dev true CFG runs
        "steps: 2, refiner_switch: 0.8",  # [501] for the base, [1] for the refiner
        "steps: 40",
    ],
)
def test_combinations_that_run_as_written_load(project, fields):
    model = "flux-dev" if "true_cfg" in fields else "sdxl-base+refiner"
    path = project / "prompts" / "ok.yaml"
    path.write_text(f"defaults: {{model: {model}}}\nentries: [{{id: a, prompt: a cat, {fields}}}]\n")
    load_catalog(path)


def test_the_refiner_error_says_how_many_steps_would_do(project):
    path = project / "prompts" / "p.yaml"
    path.write_text(
        "defaults: {model: sdxl-base+refiner}\nentries: [{id: a, prompt: x, steps: 2, refiner_switch: 0.3}]\n"
    )
    with pytest.raises(
        CatalogError,
        match=r"hint: each of base and refiner needs at least one step: raise steps \(e\.g\. `steps: 4`\)",
    ):
        load_catalog(path)


NAMES = [n for n in refiner._NAMED] + ["default"]


@pytest.mark.parametrize("name", NAMES)
def test_the_timestep_restatement_matches_diffusers(name):
    """``refiner.timestep_range`` against each scheduler's own ``set_timesteps``, through the path the
    generation loop uses (``apply_scheduler``), for every spacing, offset and 1-40 steps."""
    from diffusion_assets.generation.schedulers import apply_scheduler

    class Pipe:
        scheduler = None

    for spacing, offset, prk in itertools.product(("leading", "trailing", "linspace"), (0, 1), (False, True)):
        config = {
            "_class_name": "EulerDiscreteScheduler",
            "num_train_timesteps": 1000,
            "steps_offset": offset,
            "timestep_spacing": spacing,
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "beta_end": 0.012,
            "skip_prk_steps": prk,
        }
        pipe = Pipe()
        apply_scheduler(pipe, name, config)
        for steps in range(1 if prk or name != "pndm" else 4, 41):
            pipe.scheduler.set_timesteps(steps)
            timesteps = pipe.scheduler.timesteps.float()
            expected = (float(timesteps.max()), float(timesteps.min()))
            assert refiner.timestep_range(name, config, steps) == pytest.approx(expected, abs=0.5), (
                spacing,
                offset,
                steps,
            )


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` × ``height`` pixels (its data is one empty row: never decoded)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def test_a_control_image_too_large_to_decode_is_refused_from_its_header(project):
    (project / "prompts" / "bomb.png").write_bytes(_png_header(100_000, 100_000))
    path = project / "prompts" / "p.yaml"
    path.write_text(
        "defaults: {model: sdxl+controlnet-canny}\nentries: [{id: a, prompt: x, control_image: bomb.png}]\n"
    )
    with pytest.raises(CatalogError, match=r"field 'control_image': .*bomb.png"):
        load_catalog(path)
