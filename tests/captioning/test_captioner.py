"""Captioners: model (hub id via the mirror), tiny (the shipped folder), prompt (templates); loud errors."""

from __future__ import annotations

import pytest
from PIL import Image

from diffusion_assets.captioning.captioner import ModelCaptioner, clean_caption, load_captioner
from diffusion_assets.captioning.shapes_accuracy import score_captions
from diffusion_assets.captioning.spec import CAPTIONER_PRESETS, CaptionerSpec
from diffusion_assets.models.hashing import folder_hash
from diffusion_assets.models.loading import ModelNotAvailableError
from diffusion_assets.shapes.captions import ShapeAttrs, caption

from .conftest import SMOLVLM_ID, TINY_HUB_ID

CPU = {"device": "cpu", "dtype": "float32"}


def _images(n: int) -> list[Image.Image]:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    return [Image.new("RGB", (48, 40), colours[i % 4]) for i in range(n)]


def test_model_mode_loads_a_hub_id_from_the_offline_mirror(caption_mirror, tmp_path):
    spec = CaptionerSpec(mode="model", model=TINY_HUB_ID, max_new_tokens=4, **CPU)
    captioner = load_captioner(spec, models_dir=caption_mirror, project_root=tmp_path)
    captions = captioner.caption(_images(3), ["p"] * 3)
    assert len(captions) == 3 and all(c.startswith("a") for c in captions)  # BLIP continues its prefix
    assert captioner.mode == "model"
    assert captioner.captioner_id == TINY_HUB_ID
    assert captioner.weights_hash == folder_hash(caption_mirror / TINY_HUB_ID)


def test_a_preset_name_resolves_to_its_hub_id_in_the_mirror(caption_mirror, tmp_path):
    spec = CaptionerSpec(mode="model", model="blip-base", max_new_tokens=3, **CPU)
    captioner = load_captioner(spec, models_dir=caption_mirror, project_root=tmp_path)
    described = captioner.describe()
    assert described["captioner_id"] == "blip-base"
    assert described["captioner_model_id"] == "Salesforce/blip-image-captioning-base"
    assert described["captioner_prompt"] == "a" and described["captioner_max_new_tokens"] == 3


def test_captions_are_deterministic_across_calls_loads_and_batch_sizes(caption_mirror, tmp_path):
    images = _images(5)
    runs = []
    for batch_size in (8, 8, 2):
        spec = CaptionerSpec(mode="model", model=TINY_HUB_ID, max_new_tokens=6, batch_size=batch_size, **CPU)
        captioner = load_captioner(spec, models_dir=caption_mirror, project_root=tmp_path)
        runs += [captioner.caption(images, ["p"] * 5), captioner.caption(images, ["p"] * 5)]
    assert all(run == runs[0] for run in runs)


def test_missing_hub_model_names_the_id_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = CaptionerSpec(mode="model", model="blip-large", **CPU)
    with pytest.raises(ModelNotAvailableError) as info:
        load_captioner(spec, models_dir=tmp_path / "models", project_root=tmp_path)
    message = str(info.value)
    assert "'Salesforce/blip-image-captioning-large'" in message
    assert "hf download Salesforce/blip-image-captioning-large" in message
    assert str(tmp_path / "models" / "Salesforce/blip-image-captioning-large") in message


def test_missing_tiny_captioner_says_how_to_train_it(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="diffusion_assets.captioning.train_tiny"):
        load_captioner(CaptionerSpec(mode="tiny", **CPU), models_dir=tmp_path, project_root=tmp_path)


def test_tiny_mode_is_model_mode_on_the_local_folder(captioner_folder, shape_images):
    folder, shipped = captioner_folder
    root = folder.parents[1]  # <root>/models/shapes-captioner, as the preset expects
    tiny = load_captioner(
        CaptionerSpec(mode="tiny", batch_size=64, **CPU), models_dir=root, project_root=root
    )
    path = load_captioner(
        CaptionerSpec(mode="model", model=str(folder), batch_size=64, max_new_tokens=20, **CPU),
        models_dir=root,
        project_root=root,
    )
    assert isinstance(tiny, ModelCaptioner) and type(tiny.model) is type(path.model)
    assert tiny.max_new_tokens == 20  # the preset's; the folder path gets the same explicitly
    assert (tiny.mode, tiny.captioner_id, tiny.weights_hash) == (
        "tiny",
        "shapes-captioner",
        folder_hash(folder),
    )
    images, attrs = shape_images
    captions = tiny.caption(images, [caption(a) for a in attrs])
    assert captions == path.caption(images, [caption(a) for a in attrs])
    if not shipped:
        pytest.skip("models/shapes-captioner is not shipped here; checked the mechanics only")
    scores = score_captions(captions, attrs)
    assert scores["exact"] >= 0.98, scores  # the trigger phrases come back too: style is scored


@pytest.mark.parametrize(
    ("template", "fields", "expected"),
    [
        ("{prompt}", None, ["a red circle", "a blue square"]),
        ("{prompt}, sks style", None, ["a red circle, sks style", "a blue square, sks style"]),
        (
            "{entry_id}: {prompt}",
            [{"entry_id": "e1"}, {"entry_id": "e2"}],
            ["e1: a red circle", "e2: a blue square"],
        ),
    ],
)
def test_prompt_mode_fills_the_template(template, fields, expected, tmp_path):
    captioner = load_captioner(CaptionerSpec(mode="prompt", template=template), tmp_path, tmp_path)
    assert captioner.caption([None, None], ["a red circle", "a blue square"], fields) == expected
    assert captioner.weights_hash is None and captioner.describe()["captioner_template"] == template


def test_prompt_mode_names_a_missing_template_field(tmp_path):
    captioner = load_captioner(CaptionerSpec(mode="prompt", template="{prompt} {seed}"), tmp_path, tmp_path)
    with pytest.raises(KeyError, match="seed"):
        captioner.caption([None], ["a cat"], [{"entry_id": "e1"}])


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"mode": "model"}, "needs `model`"),
        ({"mode": "prompt", "model": "blip-base"}, "uses no model"),
        ({"mode": "prompt", "template": "{prompt"}, "malformed"),
        ({"mode": "prompt", "template": "{} {prompt}"}, "must name its fields"),
        ({"mode": "tiny", "model": "blip-base"}, "takes `shapes-captioner`"),
        ({"mode": "model", "model": "blip-base", "beams": 3}, "Extra inputs"),
    ],
)
def test_bad_specs_are_rejected(fields, match):
    with pytest.raises(ValueError, match=match):
        CaptionerSpec(**fields)


def test_presets_cover_blip_and_a_chat_vlm():
    kinds = {p.name: p.kind for p in CAPTIONER_PRESETS.values()}
    assert kinds == {
        "blip-base": "prefix",
        "blip-large": "prefix",
        "smolvlm-256m": "chat",
        "shapes-captioner": "prefix",
    }


@pytest.mark.parametrize("model", ["smolvlm-256m", "./chat"])
def test_a_chat_vlm_returns_only_its_reply(model, chat_mirror, tmp_path):
    (tmp_path / "chat").symlink_to(chat_mirror / SMOLVLM_ID)  # a local folder: kind read from the folder
    spec = CaptionerSpec(mode="model", model=model, max_new_tokens=4, batch_size=2, **CPU)
    captioner = load_captioner(spec, models_dir=chat_mirror, project_root=tmp_path)
    assert captioner.kind == "chat" and captioner.prompt == "Describe this image in one sentence."
    captions = captioner.caption(_images(3), ["p"] * 3)
    # the prompt alone is 10 words; a reply of at most 4 tokens shows it was cut off
    assert len(captions) == 3 and all(len(c.split()) <= 4 for c in captions)
    assert captions == captioner.caption(_images(3), ["p"] * 3)


def test_score_counts_unparsed_captions_as_wrong():
    truth = [ShapeAttrs("red", "circle", "gray"), ShapeAttrs("blue", "square", "white", "striped")]
    scores = score_captions(["a red circle on a gray background", "blue blue"], truth)
    assert scores["exact"] == 0.5 and scores["unparsed"] == 0.5


def test_clean_caption_fixes_word_level_decoding():
    assert clean_caption("  a red  circle , in sks outline style . ") == "a red circle, in sks outline style."
