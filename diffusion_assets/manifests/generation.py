"""The generation manifest: one row per image, every parameter that shaped it.

Hive keys (directory names, not columns): ``catalog``, ``date``.
"""

from __future__ import annotations

import pyarrow as pa

KIND = "generation"
KEY = "image_id"

SCHEMA = pa.schema(
    [
        # identity and file
        pa.field("image_id", pa.string(), nullable=False, metadata={"doc": "sha256 of the recipe, 20 hex"}),
        pa.field("path", pa.string(), nullable=False, metadata={"doc": "PNG path relative to the data root"}),
        pa.field("sha256", pa.string(), nullable=False, metadata={"doc": "sha256 of the PNG file bytes"}),
        pa.field(
            "pixel_sha256", pa.string(), nullable=False, metadata={"doc": "sha256 of decoded RGB pixels"}
        ),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        # what was asked for
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("negative_prompt", pa.string(), nullable=False),
        pa.field(
            "prompt_tokens",
            pa.int32(),
            metadata={
                "doc": "tokens of the prompt, start and end included, counted with the pipeline's own "
                "tokenizer (the most over its text encoders); null without a text encoder"
            },
        ),
        pa.field("negative_prompt_tokens", pa.int32(), metadata={"doc": "the same for the negative prompt"}),
        pa.field(
            "max_prompt_tokens",
            pa.int32(),
            metadata={
                "doc": "tokens the text encoder reads (77 for CLIP, max_sequence_length for Flux's T5)"
            },
        ),
        pa.field(
            "prompt_truncated",
            pa.bool_(),
            metadata={
                "doc": "true when the prompt or negative prompt had more tokens than the encoder reads, "
                "so its end was cut (catalogs allow it only with allow_truncated_prompts: true)"
            },
        ),
        pa.field("template_vars", pa.string(), metadata={"doc": "JSON object of template variable values"}),
        pa.field("catalog_file", pa.string(), nullable=False),
        pa.field("catalog_sha256", pa.string(), nullable=False),
        pa.field(
            "entry_id", pa.string(), nullable=False, metadata={"doc": "expanded id, e.g. fruit[kind=apple]"}
        ),
        pa.field("base_entry_id", pa.string(), nullable=False),
        pa.field("sample_index", pa.int32(), nullable=False),
        # noise
        pa.field("seed", pa.int64(), nullable=False),
        pa.field(
            "seed_derivation", pa.int32(), nullable=False, metadata={"doc": "seeds.SEED_DERIVATION_VERSION"}
        ),
        pa.field("generator_device", pa.string(), nullable=False),
        pa.field("batch_size", pa.int32(), nullable=False),
        pa.field("batch_index", pa.int32(), nullable=False, metadata={"doc": "position in its batch"}),
        pa.field(
            "batch_id", pa.string(), nullable=False, metadata={"doc": "image_id of the batch's first image"}
        ),
        # model
        pa.field("preset", pa.string(), nullable=False),
        pa.field("model_id", pa.string(), nullable=False),
        pa.field("model_revision", pa.string()),
        pa.field("model_weights_hash", pa.string(), nullable=False),
        pa.field("pipeline_class", pa.string(), nullable=False),
        pa.field("scheduler", pa.string(), nullable=False, metadata={"doc": "catalog scheduler name"}),
        pa.field("sampler", pa.string(), nullable=False, metadata={"doc": "A1111 sampler name"}),
        pa.field("scheduler_class", pa.string(), nullable=False),
        pa.field("scheduler_config", pa.string(), nullable=False, metadata={"doc": "JSON"}),
        pa.field("steps", pa.int32(), nullable=False),
        pa.field("guidance_scale", pa.float64(), nullable=False),
        pa.field("guidance_kind", pa.string(), nullable=False, metadata={"doc": "cfg | distilled | none"}),
        pa.field("true_cfg_scale", pa.float64()),
        pa.field("refiner_model_id", pa.string()),
        pa.field("refiner_weights_hash", pa.string()),
        pa.field("refiner_switch", pa.float64()),
        pa.field("controlnet_model_id", pa.string()),
        pa.field("controlnet_weights_hash", pa.string()),
        pa.field("control_preprocess", pa.string()),
        pa.field("control_image_path", pa.string()),
        pa.field("control_image_sha256", pa.string()),
        pa.field("controlnet_scale", pa.float64()),
        pa.field("lora_path", pa.string()),
        pa.field("lora_weights_hash", pa.string()),
        pa.field("lora_scale", pa.float64()),
        pa.field("depth_estimator_id", pa.string(), metadata={"doc": "depth ControlNet presets only"}),
        pa.field("depth_estimator_weights_hash", pa.string()),
        # run
        pa.field("dagster_run_id", pa.string()),
        pa.field("partition_key", pa.string(), nullable=False),
        pa.field("asset_code_version", pa.string(), nullable=False),
        pa.field("package_versions", pa.string(), nullable=False, metadata={"doc": "JSON"}),
        pa.field("device", pa.string(), nullable=False),
        pa.field("device_name", pa.string(), nullable=False),
        pa.field("dtype", pa.string(), nullable=False),
        pa.field(
            "load_options",
            pa.string(),
            metadata={"doc": "JSON: attention/VAE slicing, VAE tiling, CPU offload, torch.compile"},
        ),
        pa.field("duration_s", pa.float64(), nullable=False, metadata={"doc": "batch seconds / batch size"}),
        pa.field(
            "peak_memory_bytes", pa.int64(), metadata={"doc": "CUDA max allocated, else process max RSS"}
        ),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
