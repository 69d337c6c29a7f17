"""The ``lora_adapter`` asset: a dataset version trains a peft LoRA that loads anywhere."""

import dagster as dg
from pydantic import Field

from .conditions import follows_dataset_if_opted_in
from .datasets import lora_dataset
from .partitions import lora_dataset_partitions, partitioned_check
from .resources import GpuResource, ProjectResource

ADAPTER_CODE_VERSION = "lora-adapter-v2"


class LoraTrainingConfig(dg.Config):
    """Overrides of the spec's `training:` section for one run (unset keeps the spec's value)."""

    steps: int | None = Field(None, description="Optimizer steps.")
    learning_rate: float | None = Field(None, description="AdamW learning rate.")
    rank: int | None = Field(None, description="LoRA rank.")
    batch_size: int | None = Field(None, description="Images per step.")
    seed: int | None = Field(None, description="Training seed.")
    checkpoint_every: int | None = Field(None, description="Steps between resumable checkpoints.")
    validation_every: int | None = Field(None, description="Steps between validation images (0: at the end).")


@dg.asset(
    partitions_def=lora_dataset_partitions,
    deps=[lora_dataset],
    pool="gpu",
    automation_condition=follows_dataset_if_opted_in(),
    code_version=ADAPTER_CODE_VERSION,
    group_name="lora",
    kinds={"pytorch", "peft", "safetensors"},
    check_specs=[
        partitioned_check(
            "lora_applies",
            "lora_adapter",
            lora_dataset_partitions,
            blocking=True,
            description="Same prompt and CPU seed: weight 1 differs from weight 0, and weight 0 equals the "
            "base model exactly. Blocks evaluation and promotion of a no-op adapter.",
        )
    ],
)
def lora_adapter(
    context: dg.AssetExecutionContext, config: LoraTrainingConfig, gpu: GpuResource, project: ProjectResource
):
    """A peft LoRA trained on the dataset's latest version, saved as safetensors in kohya's key layout
    (SD/SDXL; Flux: diffusers') that diffusers, ComfyUI, Forge and A1111 load in full, with kohya ss_*
    and lineage keys in its header. An interrupted run resumes from its last
    checkpoint; an unchanged recipe keeps its adapter file untouched (same sha256, same data version)."""
    from diffusion_assets.previews import thumbnail_markdown  # noqa: PLC0415
    from diffusion_assets.training.applies import lora_applies  # noqa: PLC0415
    from diffusion_assets.training.from_spec import plan_training, train_from_spec  # noqa: PLC0415

    name = context.partition_key
    data_root = project.data_dir()
    plan = plan_training(
        project.dataset_spec_path(name), data_root, project.models_dir(), project.root_dir(),
        overrides=config.model_dump(), run_id=context.run_id,
    )  # fmt: skip
    device = gpu.leased_device(context.log.warning)
    result, row = train_from_spec(plan, data_root, ADAPTER_CODE_VERSION, device=device)
    prompt = plan.config.validation_prompts[0] if plan.config.validation_prompts else "a photo"
    passed, details = lora_applies(
        plan.base.path, result.weights_path, prompt, seed=0, steps=plan.config.validation_steps,
        size=plan.config.resolution, device=device,
    )  # fmt: skip
    validation = sorted(result.validation_dirs[-1].glob("*.png")) if result.validation_dirs else []
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(result.sha256),
        metadata={
            "adapter_id": result.adapter_id,
            "path": dg.MetadataValue.path(str(result.weights_path)),
            "dataset_version": plan.version,
            "base_model": f"{plan.lineage.base_model_id} ({plan.base.weights_hash[:10]})",
            "trigger_word": plan.lineage.trigger_word or "",
            "steps": result.steps,
            "final_loss": result.final_loss,
            "steps_per_second": result.steps_per_second,
            "resumed_from_step": result.resumed_from_step or 0,
            "loss_curve": dg.MetadataValue.path(str(result.loss_path)),
            "validation": dg.MetadataValue.md(thumbnail_markdown(validation, cols=4, cell=32)),
            "validation_images": dg.MetadataValue.path(
                str(result.validation_dirs[-1]) if result.validation_dirs else ""
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="lora_applies",
                passed=passed,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={k: str(v) for k, v in details.items()},
            )
        ],
    )
