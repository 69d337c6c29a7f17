"""The evaluations manifest: one row per evaluated image, i.e. per (model/adapter, prompt, seed, weight).

Hive key (directory name, not a column): ``dataset``. ``row_id`` is sha256[:20] of (report_id, model,
prompt, seed, weight), so re-running the same evaluation replaces its rows rather than adding to them.
Per-image scores live here; set-level metrics (KID, Fréchet distance, diversity) belong to a whole
weight and are in the report's summary, not in these rows.
"""

from __future__ import annotations

import pyarrow as pa

KIND = "evaluations"
KEY = "row_id"
HIVE_KEYS = ("dataset",)

RECIPE_COLUMNS = (
    "steps",
    "guidance_scale",
    "scheduler_class",
    "scheduler_config",
    "pipeline_class",
    "dtype",
    "width",
    "height",
    "call_kwargs",
    "batch_id",
    "batch_size",
    "batch_index",
)

SCHEMA = pa.schema(
    [
        # identity
        pa.field("row_id", pa.string(), nullable=False, metadata={"doc": "sha256[:20] of the row's recipe"}),
        pa.field(
            "report_id",
            pa.string(),
            nullable=False,
            metadata={"doc": "sha256[:20] of plan, model/adapter hashes, steps, guidance, CLIP"},
        ),
        pa.field(
            "adapter_id", pa.string(), metadata={"doc": "adapters manifest id; null in model comparisons"}
        ),
        pa.field("dataset_version", pa.string()),
        pa.field(
            "model",
            pa.string(),
            nullable=False,
            metadata={"doc": "base model (adapter reports) or the compared model's name"},
        ),
        # what was asked for
        pa.field("prompt", pa.string(), nullable=False),
        pa.field(
            "prompt_kind", pa.string(), nullable=False, metadata={"doc": "trigger | no_trigger | held_out"}
        ),
        pa.field(
            "seed", pa.int64(), nullable=False, metadata={"doc": "seeds.derive_seed of the plan's base"}
        ),
        pa.field(
            "weight", pa.float64(), metadata={"doc": "adapter weight; 0 = base model; null in comparisons"}
        ),
        # the image
        pa.field(
            "image_path", pa.string(), nullable=False, metadata={"doc": "PNG, relative to the data root"}
        ),
        pa.field(
            "image_sha256", pa.string(), nullable=False, metadata={"doc": "sha256 of the PNG file bytes"}
        ),
        # how it was made: enough for a plain diffusers call to make it again (null in older reports)
        pa.field("steps", pa.int64(), metadata={"doc": "num_inference_steps"}),
        pa.field("guidance_scale", pa.float64()),
        pa.field("scheduler_class", pa.string(), metadata={"doc": "diffusers scheduler class"}),
        pa.field("scheduler_config", pa.string(), metadata={"doc": "public config, sorted JSON"}),
        pa.field("pipeline_class", pa.string()),
        pa.field("dtype", pa.string()),
        pa.field("width", pa.int64(), metadata={"doc": "pixels"}),
        pa.field("height", pa.int64(), metadata={"doc": "pixels"}),
        pa.field("call_kwargs", pa.string(), metadata={"doc": "other pipeline call arguments, JSON"}),
        pa.field("batch_id", pa.string(), metadata={"doc": "<variant>/<n>: rows made in one pipeline call"}),
        pa.field("batch_size", pa.int64(), metadata={"doc": "the run's batch size (the last may be short)"}),
        pa.field("batch_index", pa.int64(), metadata={"doc": "position in its batch"}),
        # scores
        pa.field("clip_t", pa.float64(), nullable=False, metadata={"doc": "CLIPScore: max(100 cos, 0)"}),
        pa.field("clip_i", pa.float64(), metadata={"doc": "mean cosine to the reference (training) images"}),
        pa.field(
            "adherence_all", pa.bool_(), metadata={"doc": "shapes checker: colour and shape and background"}
        ),
        pa.field("colour_ok", pa.bool_()),
        pa.field("shape_ok", pa.bool_()),
        pa.field("background_ok", pa.bool_()),
        pa.field(
            "style_ok",
            pa.bool_(),
            metadata={"doc": "read as the plan's target style (or the prompt's own style if none)"},
        ),
        pa.field(
            "read_colour",
            pa.string(),
            metadata={"doc": "shapes checker's reading; null: unreadable (see read_problem)"},
        ),
        pa.field("read_shape", pa.string()),
        pa.field("read_background", pa.string()),
        pa.field("read_style", pa.string(), metadata={"doc": "filled | outlined | striped"}),
        pa.field(
            "read_problem",
            pa.string(),
            metadata={"doc": "why the checker could not read the image (a miss); null when it could"},
        ),
        pa.field(
            "leaked",
            pa.bool_(),
            metadata={
                "doc": "something the prompt did not ask for changed from this prompt and seed at weight 0 "
                "(any reading for no-trigger prompts; all but a change to the target style for trigger "
                "prompts); null at weight 0 and off the shapes world"
            },
        ),
        pa.field(
            "leaked_attributes",
            pa.string(),
            metadata={"doc": "comma-separated: colour,shape,background,style"},
        ),
        # run
        pa.field("device", pa.string(), metadata={"doc": "cuda:N (the leased GPU), mps or cpu"}),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("dagster_run_id", pa.string()),
    ]
)
