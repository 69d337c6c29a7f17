"""The adapter file loads, whole, where LoRA users load it: diffusers, ComfyUI, Forge and A1111.

SD and SDXL adapters are written in kohya sd-scripts' layout (``training.metadata.kohya_layers``).
Each generator's key-mapping rule is re-stated here from its loader's source and every tensor of a
real adapter is checked against it, on UNets with the block layout of the demo's base (shapes-tiny),
of SD 1.5 and of SDXL (small channel counts, real block structure):

- **ComfyUI** ``comfy/lora.py``: ``model_lora_keys_unet`` maps ``"lora_unet_" + <diffusers key without
  .weight, . as _>`` for every key that ``comfy/utils.py`` ``unet_to_diffusers(unet_config)`` names (the
  diffusers UNet's own modules), and ``load_lora`` takes ``<name>.lora_up.weight``,
  ``<name>.lora_down.weight`` (plus optional ``.lora_mid.weight``) and ``<name>.alpha``; any other key
  is logged "lora key not loaded" and dropped. **Forge** ``backend/patcher/lora.py`` carries the same
  two functions.
- **AUTOMATIC1111** ``extensions-builtin/Lora/networks.py`` (``convert_diffusers_name_to_compvis`` in
  ``lora_convert.py`` of its forks): regexes turn ``lora_unet_down_blocks_<i>_<attentions|resnets>_<j>_…``
  into ``diffusion_model_input_blocks_<1 + 3i + j>_<1|0>_…`` (resnet suffixes conv1 -> in_layers_2,
  conv2 -> out_layers_3, …), and the result must be a key of ``network_layer_mapping``: the LDM
  (compvis) module names with ``.`` as ``_``. The LDM names come from diffusers' own conversion tables
  (``scripts/convert_diffusers_to_original_stable_diffusion.py``), checked here against diffusers'
  ``convert_ldm_unet_checkpoint``, which must turn them back into exactly the UNet's keys.
- **diffusers**: ``load_lora_weights`` on the file gives the same images as the adapter it was made from.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from diffusion_assets.training.families import FAMILIES
from diffusion_assets.training.metadata import WEIGHT_NAME, kohya_layers, write_adapter

ROOT = Path(__file__).resolve().parents[2]
SPEC_TARGETS = yaml.safe_load((ROOT / "lora_datasets" / "shapes_outline.yaml").read_text())["training"][
    "target_modules"
]
EVERY_TARGET = sorted(
    {*SPEC_TARGETS, *FAMILIES["sd"].target_modules, "proj_in", "proj_out", "time_emb_proj", "conv_shortcut"}
)

SD15 = {  # SD 1.5's block structure (CompVis v1-inference.yaml), small channels
    "block_out_channels": (32, 32, 64, 64),
    "layers_per_block": 2,
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
    "norm_num_groups": 8,
}
SDXL = {  # SDXL base's block structure (sd_xl_base.yaml), transformer depth 1/2/3 instead of 1/2/10
    "block_out_channels": (32, 64, 64),
    "layers_per_block": 2,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2, 3),
    "attention_head_dim": (2, 4, 4),
    "use_linear_projection": True,
    "cross_attention_dim": 32,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": 6 * 8 + 32,
    "norm_num_groups": 8,
}


def _unet(config: dict) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=16, **config)


def _shapes_tiny_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel.from_pretrained(ROOT / "models" / "shapes-tiny" / "unet")


def _kohya_adapter(unet: UNet2DConditionModel, targets, rank: int = 4, alpha: float = 8.0) -> dict:
    """A peft adapter on ``unet`` with non-zero up weights, in the layout the trainer writes."""
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), init_lora_weights="gaussian")
    unet.add_adapter(config)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    return kohya_layers(get_peft_model_state_dict(unet), FAMILIES["sd"], config.to_dict())


# -- ComfyUI / Forge ---------------------------------------------------------------------------


def comfy_loaded_keys(unet: UNet2DConditionModel) -> set[str]:
    """Re-statement of ComfyUI's ``model_lora_keys_unet`` (the ``lora_unet_`` entries built from
    ``unet_to_diffusers``) and of the key names ``load_lora`` reads for a plain LoRA."""
    names = {k.removesuffix(".weight").replace(".", "_") for k in unet.state_dict() if k.endswith(".weight")}
    parts = ("lora_up.weight", "lora_down.weight", "lora_mid.weight", "alpha")
    return {f"lora_unet_{name}.{part}" for name in names for part in parts}


@pytest.mark.parametrize(
    ("structure", "make"),
    [("shapes-tiny", _shapes_tiny_unet), ("sd15", lambda: _unet(SD15)), ("sdxl", lambda: _unet(SDXL))],
)
def test_comfyui_and_forge_load_every_tensor(structure, make):
    tensors = _kohya_adapter(make(), EVERY_TARGET)
    not_loaded = sorted(set(tensors) - comfy_loaded_keys(make()))
    assert not_loaded == [], f"{structure}: ComfyUI would log 'lora key not loaded' for {not_loaded[:5]}"
    modules = {k.split(".", 1)[0] for k in tensors}
    assert {f"{m}.{p}" for m in modules for p in ("lora_up.weight", "lora_down.weight", "alpha")} == set(
        tensors
    )


# -- AUTOMATIC1111 ---------------------------------------------------------------------------------

RESNET_SUFFIXES = {  # A1111 suffix_conversion["resnets"]
    "conv1": "in_layers_2",
    "conv2": "out_layers_3",
    "norm1": "in_layers_0",
    "norm2": "out_layers_0",
    "time_emb_proj": "emb_layers_1",
    "conv_shortcut": "skip_connection",
}


def a1111_compvis_name(key: str) -> str:
    """Re-statement of A1111's ``convert_diffusers_name_to_compvis`` for ``lora_unet_`` keys."""

    def match(pattern):
        found = re.match(pattern, key)
        return None if found is None else [int(g) if g.isdigit() else g for g in found.groups()]

    if m := match(r"lora_unet_conv_in(.*)"):
        return f"diffusion_model_input_blocks_0_0{m[0]}"
    if m := match(r"lora_unet_conv_out(.*)"):
        return f"diffusion_model_out_2{m[0]}"
    if m := match(r"lora_unet_time_embedding_linear_(\d+)(.*)"):
        return f"diffusion_model_time_embed_{m[0] * 2 - 2}{m[1]}"
    if m := match(r"lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)"):
        suffix = RESNET_SUFFIXES.get(m[3], m[3]) if m[1] == "resnets" else m[3]
        return (
            f"diffusion_model_input_blocks_{1 + m[0] * 3 + m[2]}_{1 if m[1] == 'attentions' else 0}_{suffix}"
        )
    if m := match(r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)"):
        suffix = RESNET_SUFFIXES.get(m[2], m[2]) if m[0] == "resnets" else m[2]
        return f"diffusion_model_middle_block_{1 if m[0] == 'attentions' else m[1] * 2}_{suffix}"
    if m := match(r"lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)"):
        suffix = RESNET_SUFFIXES.get(m[3], m[3]) if m[1] == "resnets" else m[3]
        return f"diffusion_model_output_blocks_{m[0] * 3 + m[2]}_{1 if m[1] == 'attentions' else 0}_{suffix}"
    if m := match(r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv"):
        return f"diffusion_model_input_blocks_{3 + m[0] * 3}_0_op"
    if m := match(r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv"):
        return f"diffusion_model_output_blocks_{2 + m[0] * 3}_{2 if m[0] > 0 else 1}_conv"
    return key


def ldm_prefixes(config) -> list[tuple[str, str]]:
    """(diffusers prefix, LDM prefix) pairs: the tables of diffusers'
    ``scripts/convert_diffusers_to_original_stable_diffusion.py`` (and its SDXL twin), for this config."""
    per_level = config["layers_per_block"] + 1
    levels = len(config["block_out_channels"])
    down_attn = [t.startswith("CrossAttn") for t in config["down_block_types"]]
    up_attn = [t.startswith("CrossAttn") for t in config["up_block_types"]]
    pairs = [("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2.")]
    pairs += [(f"time_embedding.linear_{j + 1}.", f"time_embed.{2 * j}.") for j in range(2)]
    pairs += [(f"add_embedding.linear_{j + 1}.", f"label_emb.0.{2 * j}.") for j in range(2)]
    pairs += [("mid_block.attentions.0.", "middle_block.1.")]
    pairs += [(f"mid_block.resnets.{j}.", f"middle_block.{2 * j}.") for j in range(2)]
    for i in range(levels):
        for j in range(per_level - 1):
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{per_level * i + j + 1}.0."))
            if down_attn[i]:
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{per_level * i + j + 1}.1."))
        for j in range(per_level):
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{per_level * i + j}.0."))
            if up_attn[i]:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{per_level * i + j}.1."))
        if i < levels - 1:
            pairs.append(
                (f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{per_level * (i + 1)}.0.op.")
            )
            upsampler = f"output_blocks.{per_level * i + per_level - 1}.{2 if up_attn[i] else 1}."
            pairs.append((f"up_blocks.{i}.upsamplers.0.", upsampler))
    return pairs


RESNET_LDM = {  # the script's unet_conversion_map_resnet (diffusers -> LDM)
    "norm1.": "in_layers.0.",
    "conv1.": "in_layers.2.",
    "norm2.": "out_layers.0.",
    "conv2.": "out_layers.3.",
    "time_emb_proj.": "emb_layers.1.",
    "conv_shortcut.": "skip_connection.",
}


def to_ldm(key: str, pairs) -> str:
    for diffusers_prefix, ldm_prefix in pairs:
        if key.startswith(diffusers_prefix):
            rest = key[len(diffusers_prefix) :]
            if ".resnets." in diffusers_prefix:
                inner = next(name for name in RESNET_LDM if rest.startswith(name))
                rest = RESNET_LDM[inner] + rest[len(inner) :]
            return ldm_prefix + rest
    raise KeyError(key)


@pytest.mark.parametrize(("structure", "config"), [("sd15", SD15), ("sdxl", SDXL)])
def test_a1111_maps_every_module_onto_the_compvis_unet(structure, config):
    unet = _unet(config)
    pairs = ldm_prefixes(unet.config)
    ldm = {"model.diffusion_model." + to_ldm(k, pairs): v for k, v in unet.state_dict().items()}
    # the LDM names are right: diffusers' own single-file converter takes them back to the UNet's keys
    assert set(convert_ldm_unet_checkpoint(ldm, dict(unet.config))) == set(unet.state_dict())
    network_layer_mapping = {
        k.removeprefix("model.").removesuffix(".weight").replace(".", "_")
        for k in ldm
        if k.endswith(".weight")
    }
    tensors = _kohya_adapter(unet, EVERY_TARGET)
    stems = sorted({k.split(".", 1)[0] for k in tensors})
    unmatched = [s for s in stems if a1111_compvis_name(s) not in network_layer_mapping]
    assert unmatched == [], f"{structure}: A1111 matches no module for {unmatched[:5]}"
    assert len(stems) > 50


# -- diffusers -------------------------------------------------------------------------------------


def test_diffusers_loads_the_file_to_the_same_images(sd15_dir, tmp_path, library_warnings):
    from diffusers import DiffusionPipeline

    def image(pipe) -> np.ndarray:
        generator = torch.Generator().manual_seed(7)
        out = pipe("a red circle, sks", num_inference_steps=3, height=32, width=32, generator=generator)
        return np.asarray(out.images[0])

    trained = DiffusionPipeline.from_pretrained(sd15_dir)
    tensors = _kohya_adapter(trained.unet, EVERY_TARGET, rank=4, alpha=2.0)  # alpha != rank: scale 0.5
    config = trained.unet.peft_config["default"].to_dict()
    layers = get_peft_model_state_dict(trained.unet)
    path = write_adapter(type(trained), FAMILIES["sd"], tmp_path, layers, config, {"ss_network_dim": "4"})
    assert path.name == WEIGHT_NAME
    before = image(trained)

    loaded = DiffusionPipeline.from_pretrained(sd15_dir)
    library_warnings.clear()
    loaded.load_lora_weights(tmp_path)
    warnings = [
        r.getMessage() for r in library_warnings if "No LoRA keys associated to" not in r.getMessage()
    ]
    assert warnings == []
    wrapped = {n for n, m in loaded.unet.named_modules() if hasattr(m, "lora_A")}
    assert {"lora_unet_" + n.replace(".", "_") for n in wrapped} == {k.split(".", 1)[0] for k in tensors}
    assert loaded.unet.peft_config["default_0"].lora_alpha == 2.0
    after = image(loaded)
    without = image(DiffusionPipeline.from_pretrained(sd15_dir))
    assert not np.array_equal(before, without)  # the adapter changes the image...
    np.testing.assert_array_equal(after, before)  # ...and the file carries it whole
