"""The two entry points: ``evaluate_adapter`` (one LoRA at several weights) and ``compare_models``.

Both generate, score (``scoring``), summarise (``tables``) and write the same files into ``out_dir``:
``images/<variant>/*.png``, ``grids/seed-<i>.png``, ``report.html`` (self-contained), ``metrics.parquet``
(one row per image, ``manifests.evaluation.SCHEMA``), ``summary.json``, ``summary.md`` and ``plan.json``.
The report id hashes everything that shapes the numbers: plan, weights hashes (an adapter's recipe id),
CLIP, reference images, steps, guidance; contents and ids only, never paths.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from diffusion_assets.evaluation import report, tables
from diffusion_assets.evaluation.checks import Thresholds, evaluation_passes
from diffusion_assets.evaluation.generate import (
    GeneratedImage,
    Variant,
    generate_for_adapter,
    generate_for_models,
    save_png,
)
from diffusion_assets.evaluation.metrics import reference_images
from diffusion_assets.evaluation.plan import EvaluationPlan, ModelComparisonPlan, seed_range
from diffusion_assets.evaluation.scoring import score_images
from diffusion_assets.files import atomic_write_text, sha256_file
from diffusion_assets.models.hashing import folder_hash


@dataclass(frozen=True)
class EvaluationResult:
    """What an evaluation wrote, and its numbers."""

    report_id: str
    out_dir: Path
    html_path: Path
    metrics_path: Path
    summary: dict
    markdown: str
    rows: list[dict] = field(repr=False)
    grid_paths: tuple[Path, ...]
    passed: bool | None = None
    """The blocking check's verdict (adapter reports given thresholds), else None."""
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSettings:
    """How images are generated and scored; everything here is recorded in the report."""

    steps: int = 20
    guidance: float = 2.0
    device: str = "cpu"
    batch_size: int = 8
    call_kwargs: dict | None = None
    kid_subset_size: int = 50
    dagster_run_id: str | None = None
    relative_to: Path | None = None
    """Image paths in the rows are relative to this folder (the data root); absolute when None."""


def _hash(recipe: dict) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _source_hash(source: str | Path) -> str:
    """A local folder's content hash, or the hub id itself."""
    return folder_hash(source) if Path(source).exists() else str(source)


def _reference_hash(folder: str | Path | None) -> str | None:
    """The reference images' names and contents (the set ``scoring`` reads), not where they lie."""
    if folder is None:
        return None
    paths = reference_images(folder)
    root = Path(folder)
    return _hash({p.relative_to(root).as_posix(): sha256_file(p) for p in paths})


def adapter_report_id(
    plan: EvaluationPlan,
    base_dir: str | Path,
    adapter_path: str | Path,
    clip_dir: str | Path,
    training_images_dir: str | Path | None,
    settings: RunSettings,
) -> str:
    """The id of an adapter report: the adapter's recipe id (from its header; the file's sha256 for an
    adapter without one), the base weights hash, the plan, CLIP, reference images and settings.

    The recipe id rather than the file's hash, so one adapter has one report id; no paths, so moving
    the data root changes nothing.
    """
    adapter_path = Path(adapter_path)
    weights_file = (
        adapter_path if adapter_path.is_file() else adapter_path / "pytorch_lora_weights.safetensors"
    )
    return _hash(
        {
            "kind": "adapter",
            "plan": plan.fingerprint(),
            "base": folder_hash(base_dir),
            "adapter": _adapter_lineage(weights_file).get("adapter_id") or sha256_file(weights_file),
            "clip": _source_hash(clip_dir),
            "reference": _reference_hash(training_images_dir),
            "settings": [settings.steps, settings.guidance, settings.batch_size, settings.call_kwargs],
        }
    )


def _adapter_lineage(adapter_path: Path) -> dict[str, str]:
    """``adapter_id``, ``dataset`` and ``dataset_version`` from the adapter's header, where present."""
    from diffusion_assets.training.metadata import LINEAGE_PREFIX, read_adapter_metadata  # noqa: PLC0415

    try:
        header = read_adapter_metadata(adapter_path)
    except Exception:  # noqa: BLE001 - an adapter from elsewhere has no lineage header; callers pass ids
        return {}
    keys = ("adapter_id", "dataset", "dataset_version")
    return {k: header[LINEAGE_PREFIX + k] for k in keys if header.get(LINEAGE_PREFIX + k)}


def evaluate_adapter(
    base_dir: str | Path,
    adapter_path: str | Path,
    clip_dir: str | Path,
    training_images_dir: str | Path | None,
    plan: EvaluationPlan,
    out_dir: str | Path,
    settings: RunSettings | None = None,
    *,
    thresholds: Thresholds | Mapping[str, float | None] | None = None,
    model_name: str | None = None,
    adapter_id: str | None = None,
    dataset_version: str | None = None,
    created_at: datetime | None = None,
) -> EvaluationResult:
    """Generate ``plan`` at each adapter weight from one loaded pipeline, score it, write the report.

    ``adapter_path`` is a diffusers LoRA ``.safetensors`` (or its folder; ``loss.parquet`` beside it is
    plotted). ``training_images_dir`` (the dataset version folder, or any folder of images) is the reference
    for CLIP-I, KID and FD; None skips them. ``adapter_id``/``dataset_version`` default to the adapter's
    lineage header. ``thresholds`` (``datasets.spec.Evaluation``) adds the blocking check's verdict.
    """
    settings = settings or RunSettings()
    adapter_path, base_dir = Path(adapter_path), Path(base_dir)
    folder = adapter_path.parent if adapter_path.is_file() else adapter_path
    lineage = _adapter_lineage(adapter_path)
    adapter_id = adapter_id or lineage.get("adapter_id")
    dataset_version = dataset_version or lineage.get("dataset_version")
    model = model_name or base_dir.name
    report_id = adapter_report_id(plan, base_dir, adapter_path, clip_dir, training_images_dir, settings)
    variants, images = generate_for_adapter(
        base_dir,
        adapter_path,
        plan,
        Path(out_dir),
        model_name=model,
        steps=settings.steps,
        guidance=settings.guidance,
        device=settings.device,
        batch_size=settings.batch_size,
        call_kwargs=settings.call_kwargs,
    )
    facts = {
        "base model": f"{model} ({base_dir})",
        "adapter": str(adapter_path),
        "adapter id": adapter_id or "–",
        "dataset": f"{lineage.get('dataset', '–')} {dataset_version or ''}",
    }
    return _finish(
        "adapter",
        f"Adapter evaluation: {adapter_id or adapter_path.name}",
        report_id,
        plan,
        variants,
        images,
        clip_dir,
        training_images_dir,
        Path(out_dir),
        settings,
        facts=facts,
        adapter_id=adapter_id,
        dataset_version=dataset_version,
        thresholds=thresholds,
        loss_path=folder / "loss.parquet",
        created_at=created_at,
    )


def compare_models(
    folders: Mapping[str, str | Path],
    plan: EvaluationPlan,
    clip_dir: str | Path,
    out_dir: str | Path,
    settings: RunSettings | None = None,
    *,
    reference_images_dir: str | Path | None = None,
    created_at: datetime | None = None,
) -> EvaluationResult:
    """Generate ``plan``'s prompts x seeds with each pipeline folder (name -> folder) and compare them;
    adapter weights in the plan are ignored."""
    settings = settings or RunSettings()
    comparison = ModelComparisonPlan.from_folders(dict(folders), plan)
    report_id = _hash(
        {
            "kind": "comparison",
            "plan": plan.fingerprint(),
            "models": {name: folder_hash(folder) for name, folder in comparison.models},
            "clip": _source_hash(clip_dir),
            "reference": _reference_hash(reference_images_dir),
            "settings": [settings.steps, settings.guidance, settings.batch_size, settings.call_kwargs],
        }
    )
    variants, images = generate_for_models(
        comparison,
        Path(out_dir),
        steps=settings.steps,
        guidance=settings.guidance,
        device=settings.device,
        batch_size=settings.batch_size,
        call_kwargs=settings.call_kwargs,
    )
    return _finish(
        "comparison",
        "Model comparison: " + " vs ".join(name for name, _ in comparison.models),
        report_id,
        plan,
        variants,
        images,
        clip_dir,
        reference_images_dir,
        Path(out_dir),
        settings,
        facts={f"model {name}": folder for name, folder in comparison.models},
        created_at=created_at,
    )


def _finish(
    kind: str,
    title: str,
    report_id: str,
    plan: EvaluationPlan,
    variants: Sequence[Variant],
    images: Sequence[GeneratedImage],
    clip_dir: str | Path,
    reference_dir: str | Path | None,
    out: Path,
    settings: RunSettings,
    *,
    facts: dict[str, str],
    adapter_id: str | None = None,
    dataset_version: str | None = None,
    thresholds: Thresholds | Mapping[str, float | None] | None = None,
    loss_path: Path | None = None,
    created_at: datetime | None = None,
) -> EvaluationResult:
    # 1. scores, rows, summary, verdict
    scores, set_metrics = score_images(
        plan,
        variants,
        images,
        clip_dir,
        reference_dir,
        device=settings.device,
        kid_subset_size=settings.kid_subset_size,
    )
    rows = tables.build_rows(
        plan,
        images,
        scores,
        report_id=report_id,
        adapter_id=adapter_id,
        dataset_version=dataset_version,
        created_at=created_at or datetime.now(UTC),
        dagster_run_id=settings.dagster_run_id,
        relative_to=settings.relative_to,
        device=settings.device,
    )
    run_facts = {
        "steps": settings.steps,
        "guidance": settings.guidance,
        "clip": str(clip_dir),
        "reference": str(reference_dir) if reference_dir else None,
        "plan": plan.fingerprint(),
        "seeds": seed_range(plan.seeds, plan.base_seed),
    }
    summary = tables.summarize(rows, variants, set_metrics, report_id=report_id, kind=kind, extra=run_facts)
    verdict = evaluation_passes(summary, thresholds) if thresholds is not None else None
    markdown = tables.markdown_summary(summary, *(verdict or (None, ())))
    # 2. grids and the HTML page
    grids = report.seed_grids(plan, variants, images)
    grid_paths = tuple(out / "grids" / f"seed-{s:02d}.png" for s in range(len(grids)))
    for grid, path in zip(grids, grid_paths, strict=True):
        save_png(grid, path)
    facts = {"report id": report_id, **facts, "steps / guidance": f"{settings.steps} / {settings.guidance}"}
    facts |= {
        "CLIP": str(clip_dir),
        "reference images": str(reference_dir or "–"),
        "plan": plan.fingerprint(),
        "seeds": run_facts["seeds"],
    }
    page = report.render_html(
        title=title,
        summary=summary,
        plan=plan,
        variants=variants,
        grids=grids,
        facts=facts,
        metric_png=report.metric_plot(summary),
        loss_png=report.loss_plot(loss_path),
        verdict=verdict,
        cells=list(zip(images, rows, strict=True)),
    )
    # 3. the files
    html_path = atomic_write_text(out / "report.html", page)
    metrics_path = out / "metrics.parquet"
    tables.write_metrics(metrics_path, rows)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    atomic_write_text(out / "summary.md", markdown)
    generation = {  # how every image was made; per image (scheduler, batch) in the manifest rows
        "steps": settings.steps,
        "guidance_scale": settings.guidance,
        "batch_size": settings.batch_size,
        "call_kwargs": settings.call_kwargs or {},
        "schedulers": sorted({(r["scheduler_class"], r["scheduler_config"]) for r in rows}),
    }
    atomic_write_text(out / "plan.json", json.dumps({**plan.to_dict(), "generation": generation}, indent=2))
    return EvaluationResult(
        report_id=report_id,
        out_dir=out,
        html_path=html_path,
        metrics_path=metrics_path,
        summary=summary,
        markdown=markdown,
        rows=rows,
        grid_paths=grid_paths,
        passed=None if verdict is None else verdict[0],
        reasons=tuple(verdict[1]) if verdict else (),
    )
