"""Fixtures: a random-weight tiny BLIP saved as if mirrored from the hub, and the shapes captioner."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from diffusion_assets.captioning.train_tiny import (
    CaptionerTrainConfig,
    build_processor,
    build_tiny_blip,
    train_shapes_captioner,
)
from diffusion_assets.shapes.tokenizer import build_tokenizer
from diffusion_assets.shapes.world import STYLES, all_combos, sample, to_pil

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CAPTIONER = PROJECT_ROOT / "models" / "shapes-captioner"
TINY_HUB_ID = "org/tiny-blip"


@pytest.fixture(scope="session")
def caption_mirror(tmp_path_factory) -> Path:
    """``<models>/org/tiny-blip`` and ``<models>/Salesforce/blip-image-captioning-base``: the same tiny
    random BLIP (0.2M parameters) built from config, laid out like an offline mirror."""
    import torch

    root = tmp_path_factory.mktemp("caption_models")
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    model = build_tiny_blip(CaptionerTrainConfig(), tokenizer)
    folder = root / TINY_HUB_ID
    model.save_pretrained(folder)
    build_processor(tokenizer).save_pretrained(folder)
    shutil.copytree(folder, root / "Salesforce" / "blip-image-captioning-base")
    return root


@pytest.fixture(scope="session")
def captioner_folder(tmp_path_factory) -> tuple[Path, bool]:
    """The shipped ``models/shapes-captioner`` when present (True), else a 20-step one (False)."""
    if (SHIPPED_CAPTIONER / "config.json").is_file():
        return SHIPPED_CAPTIONER, True
    out = tmp_path_factory.mktemp("captioner_root") / "models" / "shapes-captioner"
    quick = CaptionerTrainConfig(steps=20, n_images=256, batch_size=16, eval_per_combo=1, log_every=5)
    train_shapes_captioner(out, seed=0, config=quick, threads=1)
    return out, False


@pytest.fixture(scope="session")
def shape_images():
    """One image of each of the 162 (combo, style) pairs, jittered by a seed no training run uses."""
    samples = [sample(7_777_777, i, all_combos(STYLES)) for i in range(len(all_combos(STYLES)))]
    return [to_pil(s.image) for s in samples], [s.attrs for s in samples]


SMOLVLM_ID = "HuggingFaceTB/SmolVLM-256M-Instruct"
# SmolVLM's chat layout, shortened: "<|im_start|>User:<image>Describe...<end_of_utterance>\nAssistant:"
_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}: "
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


@pytest.fixture(scope="session")
def chat_mirror(tmp_path_factory) -> Path:
    """``<models>/HuggingFaceTB/SmolVLM-256M-Instruct``: a 33k-parameter Idefics3 (SmolVLM's architecture)
    with a word-level tokenizer and a chat template, built from config."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3Processor,
        PreTrainedTokenizerFast,
    )
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    special = ["<unk>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<image>"]
    special += ["<global-img>"] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    words = "a red cat on mat describe this image in one sentence user assistant : . ,".split()
    backend = Tokenizer(models.WordLevel({t: i for i, t in enumerate(special + words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<unk>",
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        additional_special_tokens=special[1:],
    )
    images = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": 32}, max_image_size={"longest_edge": 32}
    )
    # image_seq_len = (32 / 8)^2 patches / scale_factor^2 = 4
    processor = Idefics3Processor(images, tokenizer, image_seq_len=4, chat_template=_CHAT_TEMPLATE)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = Idefics3Config(
        vision_config=tower | {"image_size": 32, "patch_size": 8},
        text_config=tower
        | {"model_type": "llama", "vocab_size": len(tokenizer), "num_key_value_heads": 2, "pad_token_id": 0},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("chat_models")
    Idefics3ForConditionalGeneration(config).save_pretrained(root / SMOLVLM_ID)
    processor.save_pretrained(root / SMOLVLM_ID)
    return root
