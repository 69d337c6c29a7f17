"""The ``evaluation_report`` asset: what an adapter does, measured, with a blocking promotion gate."""

from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from .conditions import follows_dataset_if_opted_in
from .partitions import lora_dataset_partitions, partitioned_check
from .resources import GpuResource, ProjectResource
from .training import lora_adapter

if TYPE_CHECKING:
    from diffusion_assets.evaluation.plan import EvaluationPlan

EVALUATION_CODE_VERSION = "evaluation-v2"


class EvaluationConfig(dg.Config):
    """What to evaluate with. `shapes` uses the shapes world's fixed plan and exact checker."""

    plan: Literal["shapes", "validation_prompts"] = Field(
        "shapes", description="shapes: seen/held-out shapes prompts; validation_prompts: the spec's own."
    )
    seeds: int = Field(4, gt=0, description="Fixed CPU seeds per prompt (shared by every weight).")
    steps: int = Field(20, gt=0, description="Sampling steps.")
    guidance: float = Field(2.0, ge=0, description="CFG scale.")
    clip_model: str = Field(
        "./models/shapes-tiny-clip", description="CLIP for CLIP-T/CLIP-I/KID/FD: a hub id or a ./folder."
    )


def _plan(config: EvaluationConfig, prompts: list[str], trigger: str | None) -> "EvaluationPlan":
    from diffusion_assets.datasets.load import has_word  # noqa: PLC0415
    from diffusion_assets.evaluation.plan import (  # noqa: PLC0415
        EvaluationPlan,
        PlanPrompt,
        eval_seeds,
        shapes_plan,
        shapes_style_for,
    )

    if config.plan == "shapes":
        return shapes_plan(style=shapes_style_for(trigger), n_seeds=config.seeds)
    kinds = [PlanPrompt(p, "trigger" if trigger and has_word(p, trigger) else "no_trigger") for p in prompts]
    return EvaluationPlan(prompts=tuple(kinds), seeds=eval_seeds(config.seeds))


@dg.asset(
    partitions_def=lora_dataset_partitions,
    deps=[lora_adapter],
    pool="gpu",
    automation_condition=follows_dataset_if_opted_in(blocking_checks=True),
    code_version=EVALUATION_CODE_VERSION,
    group_name="evaluation",
    kinds={"html", "parquet"},
    check_specs=[
        partitioned_check(
            "beats_baseline",
            "evaluation_report",
            lora_dataset_partitions,
            blocking=True,
            description="Style rate and CLIP-T gains over the weight-0 baseline reach the dataset spec's "
            "`evaluation` thresholds; a failing adapter is not promoted.",
        )
    ],
)
def evaluation_report(
    context: dg.AssetExecutionContext, config: EvaluationConfig, gpu: GpuResource, project: ProjectResource
):
    """An HTML report (grids of prompt × weight with aligned seeds, metric tables, loss curve) and a
    Parquet metrics table for the dataset's newest adapter, evaluated at weights 0, 0.5 and 1."""
    from diffusion_assets.datasets.build import dataset_folder  # noqa: PLC0415
    from diffusion_assets.datasets.load import load_spec  # noqa: PLC0415
    from diffusion_assets.evaluation.evaluate import RunSettings, evaluate_adapter  # noqa: PLC0415
    from diffusion_assets.evaluation.tables import write_manifest_partition  # noqa: PLC0415
    from diffusion_assets.models.loading import locate  # noqa: PLC0415
    from diffusion_assets.models.presets import is_local_spec  # noqa: PLC0415
    from diffusion_assets.training.from_spec import latest_adapter, plan_training  # noqa: PLC0415

    name, data_root = context.partition_key, project.data_dir()
    spec = load_spec(project.dataset_spec_path(name))
    adapter = latest_adapter(data_root, name)
    if adapter is None:
        raise RuntimeError(f"dataset '{name}' has no trained adapter: materialize lora_adapter first")
    training = plan_training(spec.path, data_root, project.models_dir(), project.root_dir())
    if adapter["base_weights_hash"] != training.base.weights_hash:
        raise ValueError(
            f"the newest adapter of '{name}' ({adapter['adapter_id']}) was trained on "
            f"{adapter['base_model_id']} (weights {adapter['base_weights_hash'][:12]}), but "
            f"{spec.path} now names {training.lineage.base_model_id} (weights "
            f"{training.base.weights_hash[:12]}): materialize lora_adapter for the current spec first, "
            "or restore `training.base_model`"
        )
    clip = config.clip_model
    clip_dir = locate(
        clip.removeprefix("./") if is_local_spec(clip) else clip,
        models_dir=project.models_dir(),
        project_root=project.root_dir(),
        local=is_local_spec(clip),
    )
    plan = _plan(config, list(spec.spec.training.validation_prompts), spec.spec.trigger.word)
    result = evaluate_adapter(
        training.base.path,
        data_root / adapter["path"],
        clip_dir,
        dataset_folder(data_root, name, adapter["dataset_version"]),
        plan,
        data_root / "reports" / name / adapter["adapter_id"],
        RunSettings(
            steps=config.steps,
            guidance=config.guidance,
            device=gpu.leased_device(context.log.warning),
            dagster_run_id=context.run_id,
            relative_to=data_root,
        ),
        thresholds=spec.spec.evaluation,
        model_name=training.lineage.base_model_id,
    )
    manifest = write_manifest_partition(data_root, name, result.rows)
    yield dg.MaterializeResult(
        data_version=dg.DataVersion(result.report_id),
        metadata={
            "report": dg.MetadataValue.path(str(result.html_path)),
            "metrics": dg.MetadataValue.path(str(result.metrics_path)),
            "manifest": dg.MetadataValue.path(str(manifest)),
            "adapter_id": adapter["adapter_id"],
            "rows": len(result.rows),
            "summary": dg.MetadataValue.md(result.markdown),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="beats_baseline",
                passed=bool(result.passed),
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"reasons": "; ".join(result.reasons) or "all thresholds met"},
            )
        ],
    )


class ModelComparisonConfig(dg.Config):
    """Which models to compare (Lab 2.6.4: e.g. sdxl-base vs flux-schnell), on which prompts."""

    models: list[str] = Field(
        default_factory=lambda: ["shapes-tiny", "shapes-render"],
        description="Two or more presets or ./folders, generated with the same prompts and CPU seeds.",
    )
    catalog: str | None = Field(
        None, description="Take the prompts from this catalog in prompts/; unset: the shapes world's plan."
    )
    max_prompts: int = Field(12, gt=0, description="At most this many distinct prompts from the catalog.")
    seeds: int = Field(4, gt=0, description="Fixed CPU seeds per prompt, shared by every model.")
    steps: int = Field(20, gt=0, description="Sampling steps for every model.")
    guidance: float = Field(2.0, ge=0, description="Guidance for every model.")
    clip_model: str = Field(
        "./models/shapes-tiny-clip", description="CLIP for CLIP-T: a hub id or a ./folder."
    )


@dg.asset(
    group_name="evaluation", pool="gpu", code_version=EVALUATION_CODE_VERSION, kinds={"html", "parquet"}
)
def model_comparison(
    context: dg.AssetExecutionContext,
    config: ModelComparisonConfig,
    gpu: GpuResource,
    project: ProjectResource,
) -> dg.MaterializeResult:
    """Two or more models over the same prompts and CPU seeds: side-by-side grids, CLIP-T, diversity
    and (on the shapes world) exact adherence, in one HTML report under data/reports/comparisons/."""
    from diffusion_assets.catalog.expand import expand_catalog  # noqa: PLC0415
    from diffusion_assets.catalog.load import load_catalog, resolve_model  # noqa: PLC0415
    from diffusion_assets.evaluation.evaluate import RunSettings, compare_models  # noqa: PLC0415
    from diffusion_assets.evaluation.plan import (  # noqa: PLC0415
        EvaluationPlan,
        PlanPrompt,
        eval_seeds,
        shapes_plan,
    )
    from diffusion_assets.models.loading import locate, model_refs  # noqa: PLC0415
    from diffusion_assets.models.presets import is_local_spec  # noqa: PLC0415

    root = project.root_dir()
    folders = {
        spec: model_refs(resolve_model(spec, root), project.models_dir(), root, gpu.allow_download)[
            "base"
        ].path
        for spec in config.models
    }
    if config.catalog:
        jobs = expand_catalog(load_catalog(project.catalog_path(config.catalog)), "2000-01-01")
        prompts = list(dict.fromkeys(j.prompt for j in jobs))[: config.max_prompts]
        plan = EvaluationPlan(
            prompts=tuple(PlanPrompt(p, "no_trigger") for p in prompts), seeds=eval_seeds(config.seeds)
        )
    else:
        plan = shapes_plan(style=None, n_seeds=config.seeds)
    clip = config.clip_model
    clip_dir = locate(clip.removeprefix("./") if is_local_spec(clip) else clip, models_dir=project.models_dir(),
                      project_root=root, local=is_local_spec(clip))  # fmt: skip
    name = "-vs-".join(s.strip("./").replace("/", "_") for s in config.models)
    result = compare_models(
        folders,
        plan,
        clip_dir,
        project.data_dir() / "reports" / "comparisons" / name,
        RunSettings(steps=config.steps, guidance=config.guidance, device=gpu.leased_device(context.log.warning),
                    relative_to=project.data_dir()),
    )  # fmt: skip
    return dg.MaterializeResult(
        data_version=dg.DataVersion(result.report_id),
        metadata={
            "report": dg.MetadataValue.path(str(result.html_path)),
            "metrics": dg.MetadataValue.path(str(result.metrics_path)),
            "summary": dg.MetadataValue.md(result.markdown),
        },
    )
