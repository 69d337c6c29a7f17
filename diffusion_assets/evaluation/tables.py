"""Rows, summaries and the Markdown headline of an evaluation: everything but the images and the HTML.

A summary has one entry per variant (a weight, or a compared model) with per-image means over all its
images and per prompt kind, plus set-level metrics (CLIP-I, KID, FD, diversity) passed in. For adapter
reports, ``gains`` compares weight 1 with weight 0 on the trigger prompts: the style-rate gain (a fraction)
and the CLIP-T gain in cosine units (CLIP-T / 100), which is what the blocking check reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from diffusion_assets.evaluation.generate import GeneratedImage, Variant
from diffusion_assets.evaluation.plan import PROMPT_KINDS, EvaluationPlan
from diffusion_assets.files import RECORD_WAIT, exclusive
from diffusion_assets.manifests import evaluation as manifest
from diffusion_assets.manifests import io

ROW_SCORES = ("clip_t", "clip_i", "adherence_all", "style_ok", "leaked", "unreadable")
"""Per-image columns averaged into a variant's summary (booleans become rates)."""
SUMMARY_NAMES = {
    "clip_t": "CLIP-T",
    "clip_i": "CLIP-I",
    "kid_mean": "KID",
    "kid_std": "KID std",
    "fd": "FD (CLIP)",
    "diversity": "diversity",
    "adherence_all": "adherence",
    "style_ok": "style rate",
    "leaked": "leakage",
    "unreadable": "unreadable",
}
READ_ATTRIBUTES = ("colour", "shape", "background", "style")
"""What the shapes checker reads; leakage is any of them changing unasked (``leaked_attributes``)."""


def row_id(report_id: str, model: str, prompt: str, seed: int, weight: float | None) -> str:
    key = f"{report_id}|{model}|{prompt}|{seed}|{weight}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def build_rows(
    plan: EvaluationPlan,
    images: Sequence[GeneratedImage],
    scores: Sequence[dict],
    *,
    report_id: str,
    adapter_id: str | None,
    dataset_version: str | None,
    created_at: datetime,
    dagster_run_id: str | None = None,
    relative_to: Path | None = None,
    device: str | None = None,
) -> list[dict]:
    """One manifest row per image; ``scores[i]`` holds ``clip_t``, ``clip_i`` and the shapes verdict;
    ``device`` is where the images were made."""
    rows = []
    for image, score in zip(images, scores, strict=True):
        prompt = plan.prompts[image.prompt_index]
        seed = plan.seeds[image.seed_index]
        shapes = score.get("shapes") or {}
        path = image.path.resolve()
        rows.append(
            {
                "row_id": row_id(report_id, image.variant.model, prompt.text, seed, image.variant.weight),
                "report_id": report_id,
                "adapter_id": adapter_id,
                "dataset_version": dataset_version,
                "model": image.variant.model,
                "prompt": prompt.text,
                "prompt_kind": prompt.kind,
                "seed": seed,
                "weight": image.variant.weight,
                "image_path": str(path.relative_to(relative_to.resolve()) if relative_to else path),
                "image_sha256": image.sha256,
                **{name: image.recipe.get(name) for name in manifest.RECIPE_COLUMNS},
                "clip_t": score["clip_t"],
                "clip_i": score.get("clip_i"),
                "adherence_all": shapes.get("all"),
                "colour_ok": shapes.get("colour"),
                "shape_ok": shapes.get("shape"),
                "background_ok": shapes.get("background"),
                "style_ok": shapes.get("style"),
                **{f"read_{a}": (shapes.get("reading") or {}).get(a) for a in READ_ATTRIBUTES},
                "read_problem": shapes.get("unreadable"),
                "leaked": None,
                "leaked_attributes": None,
                "device": device,
                "created_at": created_at,
                "dagster_run_id": dagster_run_id,
            }
        )
    return mark_leakage(rows, plan.target_style)


def leaked_attributes(base: dict, row: dict, target_style: str | None) -> list[str]:
    """What the checker read differently in ``row`` than in ``base`` (the same prompt and seed at
    weight 0) that the prompt did not ask for: for a no-trigger prompt any change (an outline adapter
    that stripes a circle leaks); for a trigger prompt any change but the style becoming
    ``target_style``. A shape found at one weight and not at the other changes every attribute."""
    changed = [a for a in READ_ATTRIBUTES if row[f"read_{a}"] != base[f"read_{a}"]]
    asked = row["prompt_kind"] != "no_trigger" and target_style is not None
    if asked and row["read_style"] == target_style:
        changed = [a for a in changed if a != "style"]
    return changed


def mark_leakage(rows: list[dict], target_style: str | None) -> list[dict]:
    """Fill ``leaked`` and ``leaked_attributes`` of every adapter-weighted row from its weight-0 twin
    (same model, prompt and seed); rows at weight 0, without a twin, or off the shapes world stay null."""
    base = {(r["model"], r["prompt"], r["seed"]): r for r in rows if r["weight"] == 0.0}
    for row in rows:
        twin = base.get((row["model"], row["prompt"], row["seed"]))
        if row["weight"] in (None, 0.0) or twin is None:
            continue
        if row["adherence_all"] is None or twin["adherence_all"] is None:
            continue
        changed = leaked_attributes(twin, row, target_style)
        row["leaked"], row["leaked_attributes"] = bool(changed), ",".join(changed) or None
    return rows


def _score(row: dict, key: str):
    """A row's value for a summary score; ``unreadable`` is derived (the checker's ``read_problem`` is
    set), None off the shapes world."""
    if key == "unreadable":
        return None if row.get("adherence_all") is None else row.get("read_problem") is not None
    return row.get(key)


def _mean(values: Sequence) -> float | None:
    present = [float(v) for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _matches(row: dict, variant: Variant) -> bool:
    return row["model"] == variant.model and row["weight"] == variant.weight


def summarize(
    rows: Sequence[dict],
    variants: Sequence[Variant],
    set_metrics: dict[str, dict] | None = None,
    *,
    report_id: str = "",
    kind: str = "adapter",
    extra: dict | None = None,
) -> dict:
    """The report's summary dict: per-variant means (overall and per prompt kind), set metrics, gains."""
    entries = []
    for variant in variants:
        mine = [r for r in rows if _matches(r, variant)]
        entry = {"label": variant.label, "model": variant.model, "weight": variant.weight, "n": len(mine)}
        entry |= {key: _mean([_score(r, key) for r in mine]) for key in ROW_SCORES}
        entry |= {"kid_mean": None, "kid_std": None, "fd": None, "diversity": None}
        entry |= (set_metrics or {}).get(variant.label, {})
        entry["by_kind"] = {
            k: {key: _mean([_score(r, key) for r in mine if r["prompt_kind"] == k]) for key in ROW_SCORES}
            | {"n": sum(r["prompt_kind"] == k for r in mine)}
            for k in PROMPT_KINDS
            if any(r["prompt_kind"] == k for r in mine)
        }
        entries.append(entry)
    summary = {"report_id": report_id, "kind": kind, "n_images": len(rows), "variants": entries}
    if kind == "adapter":
        summary["gains"] = gains(entries)
    return summary | (extra or {})


def gains(entries: Sequence[dict], kind: str = "trigger") -> dict[str, float | None]:
    """Weight 1 minus weight 0 on ``kind`` prompts: style rate (fraction) and CLIP-T (cosine units);
    and ``leakage``: the fraction of no-trigger images at weight 1 where anything changed from weight 0
    (``leaked_attributes``)."""
    by_weight = {e["weight"]: e["by_kind"].get(kind, {}) for e in entries}
    base, full = by_weight.get(0.0), by_weight.get(1.0)
    untriggered = next((e["by_kind"].get("no_trigger", {}) for e in entries if e["weight"] == 1.0), {})
    out: dict[str, float | None] = {"style": None, "clip_t": None, "leakage": untriggered.get("leaked")}
    if base is None or full is None:
        return out
    if base.get("style_ok") is not None and full.get("style_ok") is not None:
        out["style"] = full["style_ok"] - base["style_ok"]
    if base.get("clip_t") is not None and full.get("clip_t") is not None:
        out["clip_t"] = (full["clip_t"] - base["clip_t"]) / 100
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def metric_table_rows(summary: dict) -> list[dict[str, str]]:
    """The per-variant metric table as strings (shared by the HTML report and the Markdown summary)."""
    table = []
    for entry in summary["variants"]:
        kid = _fmt(entry["kid_mean"], 4)
        if entry["kid_std"] is not None:
            kid += f" ± {entry['kid_std']:.4f}"
        table.append(
            {
                "variant": entry["label"],
                "n": str(entry["n"]),
                "CLIP-T": _fmt(entry["clip_t"], 2),
                "CLIP-I": _fmt(entry["clip_i"]),
                "KID ± std": kid,
                "FD (CLIP)": _fmt(entry["fd"]),
                "diversity": _fmt(entry["diversity"]),
                "adherence": _fmt(entry["adherence_all"], 2),
                "style rate": _fmt(entry["style_ok"], 2),
                "leakage": _fmt(entry.get("leaked"), 2),
                "unreadable": _fmt(entry.get("unreadable"), 2),
            }
        )
    return table


def markdown_summary(summary: dict, passed: bool | None = None, reasons: Sequence[str] = ()) -> str:
    """Headline numbers for the Dagster UI: gains and verdict (adapter reports), then the metric table."""
    lines = []
    if passed is not None:
        lines.append(f"**{'PASS' if passed else 'FAIL'}**" + "".join(f"\n- {r}" for r in reasons))
    g = summary.get("gains")
    if g:
        lines.append(
            f"Trigger prompts, weight 1 vs 0: style rate gain **{_fmt(g['style'], 2)}**, "
            f"CLIP-T gain **{_fmt(g['clip_t'], 4)}** (cosine units); leakage (no-trigger images "
            f"changed at weight 1) **{_fmt(g.get('leakage'), 2)}**."
        )
    if summary.get("seeds"):
        lines.append(f"Seeds: {summary['seeds']}.")
    table = metric_table_rows(summary)
    columns = list(table[0]) if table else []
    lines.append(
        "| "
        + " | ".join(columns)
        + " |\n|"
        + "---|" * len(columns)
        + "\n"
        + "\n".join("| " + " | ".join(r[c] for c in columns) + " |" for r in table)
    )
    return "\n\n".join(lines)


def write_metrics(path: Path, rows: Sequence[dict]) -> str:
    """The report's own metrics table (manifest schema); returns the file's sha256."""
    return io.write_table(path, list(rows), manifest.SCHEMA)


def write_manifest_partition(data_root: Path, dataset: str, rows: Sequence[dict]) -> Path:
    """Upsert ``rows`` into ``manifests/evaluations/dataset=<dataset>/``: rows of the same reports are
    replaced, other reports' rows are kept. Returns the partition file."""
    keys = {"dataset": dataset}
    path = io.partition_path(data_root, manifest.KIND, keys)
    # several reports may record at once: the read-modify-write queues on the manifest's lock
    lock = io.lock_path(data_root, manifest.KIND, keys)
    with exclusive(lock, f"evaluations manifest of {dataset}", wait=RECORD_WAIT):
        existing = io.read_table(path, manifest.SCHEMA)
        replaced = {r["report_id"] for r in rows}
        kept = [
            r
            for r in (existing.to_pylist() if existing is not None else [])
            if r["report_id"] not in replaced
        ]
        io.write_table(path, kept + list(rows), manifest.SCHEMA)
    return path
