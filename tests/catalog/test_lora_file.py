"""A catalog's `lora.path` is checked before any model loads: safetensors only, and every module of the
adapter must exist, with the same shapes, in the base model.

Key layouts are the ones diffusers reads (``diffusers/loaders/lora_conversion_utils.py``, and
``lora_pipeline.py`` for the ``unet.`` / ``text_encoder.`` prefixes): diffusers' legacy
``.lora.down.weight``, peft's ``.lora_A.<adapter>.weight``, and kohya's ``lora_unet_…lora_down.weight``
with ``.alpha``. peft drops modules a model does not have with only a warning ("unexpected keys"), and a
shape mismatch fails deep inside the run; both are errors here.
"""

from __future__ import annotations

import pytest
import torch

from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.generation.partition import RunInfo, generate_partition
from tests.catalog.helpers import lora_for, write_adapter
from tests.conftest import write_catalog

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
SDXL = "stabilityai/stable-diffusion-xl-base-1.0"
FLUX = "black-forest-labs/FLUX.1-dev"


def _catalog(project, model: str, adapter: str, name: str = "styled"):
    text = (
        f"defaults: {{model: {model}, width: 64, height: 64, steps: 2}}\n"
        f"entries:\n  - id: cat\n    prompt: a cat\n    lora: {{path: ../adapters/{adapter}, scale: 0.8}}\n"
    )
    return write_catalog(project, name, text)


@pytest.mark.parametrize("suffix", [".bin", ".ckpt", ".pt", ".pth"])
def test_a_pickle_adapter_is_refused_with_the_conversion(project, suffix):
    (project / "adapters").mkdir()
    torch.save({"unet.x.lora.down.weight": torch.zeros(1)}, project / "adapters" / f"style{suffix}")
    with pytest.raises(CatalogError) as info:
        load_catalog(_catalog(project, "sd15", f"style{suffix}"))
    message = str(info.value)
    assert "entry 'cat' (entries[0]), field 'lora.path'" in message
    assert f"'style{suffix}' is a pickle file ({suffix}), not safetensors" in message
    assert "from safetensors.torch import save_file" in message and "style.safetensors" in message


def test_a_pickle_renamed_to_safetensors_is_refused(project):
    (project / "adapters").mkdir()
    torch.save({"unet.x.lora.down.weight": torch.zeros(1)}, project / "adapters" / "style.safetensors")
    with pytest.raises(CatalogError, match="'style.safetensors' is not a safetensors file: it is a pickle"):
        load_catalog(_catalog(project, "sd15", "style.safetensors"))


@pytest.mark.parametrize(
    ("component", "layout"),
    [
        ("unet", "diffusers"),
        ("unet", "processor"),
        ("unet", "peft"),
        ("unet", "kohya"),
        ("text_encoder", "peft"),
        ("text_encoder", "kohya"),
    ],
)
def test_an_adapter_that_fits_loads(project, tiny_mirror, component, layout):
    every = ".q_proj.weight" if component == "text_encoder" else ".to_k.weight"
    write_adapter(
        project / "adapters" / "fit.safetensors", lora_for(tiny_mirror / SD15, component, layout, every)
    )
    loaded = load_catalog(_catalog(project, "sd15", "fit.safetensors"))
    assert loaded.warnings == []


@pytest.mark.parametrize(
    ("model", "built_for", "words"),
    [
        ("sd15", SDXL, "have other shapes than sd15's"),  # SDXL's cross-attention is wider
        ("sdxl-base", SD15, "name modules sdxl-base does not have"),  # SD has down_blocks.0 attentions
        ("sd15", FLUX, "name modules sd15 does not have (e.g. transformer."),
        ("flux-dev", SD15, "name modules flux-dev does not have"),
    ],
    ids=["sdxl-on-sd15", "sd15-on-sdxl", "flux-on-sd15", "sd15-on-flux"],
)
def test_an_adapter_for_another_architecture_is_a_named_error(project, tiny_mirror, model, built_for, words):
    component = "transformer" if built_for == FLUX else "unet"
    shapes = lora_for(tiny_mirror / built_for, component, "peft")
    write_adapter(project / "adapters" / "other.safetensors", shapes, {"ss_base_model_version": "other_v1"})
    with pytest.raises(CatalogError) as info:
        load_catalog(_catalog(project, model, "other.safetensors"))
    message = str(info.value)
    assert "entry 'cat' (entries[0]), field 'lora.path': the adapter does not fit" in message
    assert words in message, message
    assert "its header says ss_base_model_version=other_v1" in message


def test_kohya_names_in_the_original_checkpoint_layout_are_checked_by_family(project):
    # lora_unet_input_blocks_…: SD/SDXL's original layout, which diffusers converts when it loads
    ldm = {
        "lora_unet_input_blocks_1_1_proj_in.lora_down.weight": (4, 8),
        "lora_unet_input_blocks_1_1_proj_in.alpha": (),
    }
    write_adapter(project / "adapters" / "ldm.safetensors", ldm)
    load_catalog(_catalog(project, "sdxl-base", "ldm.safetensors"))
    with pytest.raises(CatalogError, match="use another model family's layout"):
        load_catalog(_catalog(project, "flux-dev", "ldm.safetensors", name="flux"))


@pytest.mark.parametrize(
    ("shapes", "words"),
    [({}, "holds no LoRA tensors"), ({"model.diffusion.weight": (4, 4)}, "names no LoRA loader reads")],
    ids=["empty", "unknown-names"],
)
def test_an_adapter_that_would_change_nothing_is_refused(project, shapes, words):
    write_adapter(project / "adapters" / "odd.safetensors", shapes)
    with pytest.raises(CatalogError, match=words):
        load_catalog(_catalog(project, "sd15", "odd.safetensors"))


def test_without_the_base_weights_the_check_is_a_warning_naming_where_it_looked(
    project, tiny_mirror, monkeypatch
):
    write_adapter(project / "adapters" / "fit.safetensors", lora_for(tiny_mirror / SD15))
    monkeypatch.setenv("DIFFUSION_ASSETS_MODELS", str(project / "no-models"))
    loaded = load_catalog(_catalog(project, "sd15", "fit.safetensors"))
    [warning] = [w for w in loaded.warnings if w.field == "lora.path"]
    assert (
        str(project / "no-models" / SD15) in warning.message
        and "could not check the adapter" in warning.message
    )


def _peft_adapter(folder, out):
    """An adapter the way diffusers' own training scripts save one (peft LoRA on the UNet)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(out, unet_lora_layers=state)
    return out / "pytorch_lora_weights.safetensors"


def test_a_real_adapter_fits_its_base_and_is_refused_before_another_base_loads(
    project, tiny_mirror, shared_provider
):
    adapter = _peft_adapter(tiny_mirror / SD15, project / "adapters")
    assert load_catalog(_catalog(project, "sd15", adapter.name)).warnings == []
    path = _catalog(project, "sdxl-base", adapter.name, name="wrong")
    before = shared_provider.loads
    with pytest.raises(CatalogError, match="field 'lora.path': the adapter does not fit sdxl-base"):
        generate_partition(
            path, "2026-11-28", project / "data", shared_provider, RunInfo(None, "wrong|x", "t")
        )
    assert shared_provider.loads == before  # no model was loaded
    assert not (project / "data").exists()  # nothing was written
