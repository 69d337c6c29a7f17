"""The trained adapter file: kohya's key layout (Flux: diffusers'), kohya and lineage header metadata.

SD and SDXL adapters are written in kohya sd-scripts' layout (``lora_unet_…lora_down/lora_up.weight``
and ``.alpha``), the one that diffusers, ComfyUI, Forge and A1111 each load in full. Flux adapters are
written by diffusers' ``save_lora_weights`` (peft keys plus ``format`` and ``lora_adapter_metadata``,
the ``LoraConfig`` that ``load_lora_weights`` needs to restore ``lora_alpha``), which has no way to add
other keys, so ``write_adapter`` rewrites its tensors with ``safetensors.torch.save_file`` and the merged
header, atomically.

Header keys (all values strings, as safetensors requires):

- kohya sd-scripts' ``ss_*`` keys, read by A1111/ComfyUI/civitai metadata viewers;
- ``diffusion_assets.*`` lineage: dataset, version, base model, trigger word, run id, adapter id, config.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from diffusion_assets.files import atomic_write_with
from diffusion_assets.models.hashing import short_hash
from diffusion_assets.training.config import LoraLineage, LoraTrainConfig
from diffusion_assets.training.families import Family

WEIGHT_NAME = "pytorch_lora_weights.safetensors"
"""diffusers' default LoRA file name: ``load_lora_weights(folder)`` finds it without ``weight_name``."""
LINEAGE_PREFIX = "diffusion_assets."


def header_metadata(
    config: LoraTrainConfig,
    lineage: LoraLineage,
    *,
    family: Family,
    base_weights_hash: str,
    adapter_id: str,
    output_name: str,
    num_train_images: int,
    tag_frequency: dict[str, int],
    started_at: float,
    finished_at: float,
) -> dict[str, str]:
    """Every header key but diffusers' own; times are Unix seconds, as kohya writes them."""
    kohya = {
        "ss_base_model_version": family.kohya_version,
        "ss_sd_model_name": lineage.base_model_id,
        "ss_sd_model_hash": short_hash(base_weights_hash),
        "ss_new_sd_model_hash": base_weights_hash,
        **({"ss_network_module": "networks.lora"} if family.kohya_keys else {}),
        "ss_network_dim": str(config.rank),
        "ss_network_alpha": _number(config.alpha),
        "ss_tag_frequency": json.dumps({lineage.dataset: tag_frequency}),
        "ss_dataset_dirs": json.dumps({lineage.dataset: {"n_repeats": 1, "img_count": num_train_images}}),
        "ss_training_started_at": repr(float(started_at)),
        "ss_training_finished_at": repr(float(finished_at)),
        "ss_seed": str(config.seed),
        "ss_steps": str(config.steps),
        "ss_max_train_steps": str(config.steps),
        "ss_learning_rate": repr(config.learning_rate),
        "ss_unet_lr": repr(config.learning_rate),
        "ss_text_encoder_lr": "0",
        "ss_train_batch_size": str(config.batch_size),
        "ss_resolution": f"({config.resolution}, {config.resolution})",
        "ss_num_train_images": str(num_train_images),
        "ss_mixed_precision": config.mixed_precision,
        "ss_gradient_checkpointing": str(config.gradient_checkpointing),
        "ss_min_snr_gamma": "None" if config.min_snr_gamma is None else repr(config.min_snr_gamma),
        "ss_output_name": output_name,
    }
    ours = {
        "dataset": lineage.dataset,
        "dataset_version": lineage.dataset_version,
        "base_model_id": lineage.base_model_id,
        "base_weights_hash": base_weights_hash,
        "trigger_word": lineage.trigger_word or "",
        "dagster_run_id": lineage.dagster_run_id or "",
        "adapter_id": adapter_id,
        "family": family.name,
        "config": config.to_json(),
    }
    return {**kohya, **{LINEAGE_PREFIX + k: v for k, v in ours.items()}}


def _number(value: float) -> str:
    """``8`` rather than ``8.0`` for whole numbers, as kohya writes network_alpha."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def kohya_layers(lora_layers: dict, family: Family, lora_config: dict) -> dict:
    """peft's adapter tensors in kohya sd-scripts' LoRA layout, with each module's ``alpha``.

    Keys become ``lora_unet_<module, . as _>.lora_down.weight`` (peft's ``lora_A``, shape ``(r, in)``
    or ``(r, in, kh, kw)``), ``.lora_up.weight`` (``lora_B``, ``(out, r)`` or ``(out, r, 1, 1)``) and
    ``.alpha`` (a float32 scalar, the ``lora_alpha`` trained with; a reader scales by alpha / r as
    peft did), through diffusers' ``convert_state_dict_to_kohya``, whose own alpha is the rank.
    This is the layout sd-scripts' ``networks/lora.py`` saves and that A1111's ``extensions-builtin/Lora``,
    ComfyUI's and Forge's ``lora.py`` and diffusers' ``_convert_non_diffusers_lora_to_diffusers`` map
    onto their UNets (``tests/training/test_kohya_layout.py`` re-states each rule).

    Raises:
        ValueError: the config has per-module rank or alpha patterns (one alpha is written for all).
    """
    import torch  # noqa: PLC0415
    from diffusers.utils import convert_state_dict_to_kohya  # noqa: PLC0415

    if lora_config.get("rank_pattern") or lora_config.get("alpha_pattern"):
        raise ValueError("kohya layout: per-module rank_pattern/alpha_pattern are not supported")
    prefixed = {f"{family.denoiser}.{key}": tensor for key, tensor in lora_layers.items()}
    converted = convert_state_dict_to_kohya(prefixed)
    alpha = torch.tensor(float(lora_config["lora_alpha"]), dtype=torch.float32)
    return {k: alpha.clone() if k.endswith(".alpha") else v.contiguous() for k, v in converted.items()}


def write_adapter(
    pipeline_class: type,
    family: Family,
    out_dir: str | Path,
    lora_layers: dict,
    lora_config: dict,
    header: dict[str, str],
) -> Path:
    """Write ``out_dir/pytorch_lora_weights.safetensors`` with ``header`` in its metadata, atomically.

    SD and SDXL (``family.kohya_keys``): kohya's layout (``kohya_layers``), with no diffusers
    ``lora_adapter_metadata`` key (diffusers refuses a file with both alphas and that key; the alphas
    carry ``lora_alpha``). Flux: diffusers' own ``save_lora_weights`` serialisation (peft keys and
    ``lora_adapter_metadata``, which ``load_lora_weights`` needs to restore ``lora_alpha``), rewritten
    with the header merged in.

    Args:
        pipeline_class: the base pipeline's class (its ``save_lora_weights`` picks the key prefix).
        lora_layers: ``get_peft_model_state_dict(denoiser)``: ``<module>.lora_A.weight`` / ``lora_B``.
        lora_config: the adapter's ``LoraConfig.to_dict()``.
        header: ``header_metadata(...)``.

    Raises:
        ValueError: a header key would overwrite one of diffusers' own.
        TypeError: a header value is not a string (safetensors metadata is str -> str).
    """
    target = Path(out_dir) / WEIGHT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    if family.kohya_keys:
        tensors, theirs = kohya_layers(lora_layers, family, lora_config), {"format": "pt"}
    else:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".lora-") as scratch:
            # diffusers' own serialisation: key names and lora_adapter_metadata exactly as it loads them
            pipeline_class.save_lora_weights(
                scratch,
                **{
                    f"{family.denoiser}_lora_layers": lora_layers,
                    f"{family.denoiser}_lora_adapter_metadata": lora_config,
                },
            )
            written = Path(scratch) / WEIGHT_NAME
            tensors = load_file(str(written))
            with safe_open(str(written), framework="pt") as handle:
                theirs = handle.metadata() or {}
    clash = set(theirs) & set(header)
    if clash:
        raise ValueError(f"header keys {sorted(clash)} would overwrite diffusers' own metadata")
    metadata = {**header, **theirs}
    bad = [k for k, v in metadata.items() if not isinstance(v, str)]
    if bad:
        raise TypeError(f"safetensors metadata values must be strings; not: {bad}")
    return atomic_write_with(target, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def read_adapter_metadata(path: str | Path) -> dict[str, str]:
    """The header metadata of an adapter file (or of ``<folder>/pytorch_lora_weights.safetensors``).

    Values are the stored strings; JSON-valued keys (``ss_tag_frequency``, ``ss_dataset_dirs``,
    ``diffusion_assets.config``, ``lora_adapter_metadata``) are left for the caller to ``json.loads``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHT_NAME
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def adapter_config(path: str | Path) -> LoraTrainConfig:
    """The ``LoraTrainConfig`` an adapter file was trained with, from its header."""
    return LoraTrainConfig.model_validate_json(read_adapter_metadata(path)[LINEAGE_PREFIX + "config"])
