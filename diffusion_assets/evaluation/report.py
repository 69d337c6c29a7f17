"""The evaluation report's pictures and its self-contained HTML page.

Every picture is inlined as a base64 PNG data URI, so the HTML file is the whole report: it can be
mailed, attached to a run or opened from any folder. Image grids have one row per prompt and one column
per variant (weight or model); there is one grid per seed, so a column compares weights on identical
noise. Plots are drawn on ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq
from matplotlib.figure import Figure
from PIL import Image

from diffusion_assets.evaluation.generate import GeneratedImage, Variant
from diffusion_assets.evaluation.plan import PROMPT_KINDS, EvaluationPlan
from diffusion_assets.evaluation.tables import SUMMARY_NAMES, metric_table_rows
from diffusion_assets.previews import image_grid

MAX_CELL = 256
DISPLAY_CELL = 96
"""On-page pixels per grid cell; small images are scaled up without smoothing."""
CAVEATS = (
    "KID and FD are computed in the CLIP image-embedding space of the report's CLIP model, against the "
    "reference (training) images. With tens of samples FD is biased upward and KID has a large variance "
    "(see its ± std over subsets): compare them between columns of this report, not with other reports "
    "or published FID numbers."
)
PLOTTED = ("clip_t", "clip_i", "kid_mean", "fd", "diversity", "adherence_all", "style_ok")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def seed_grids(
    plan: EvaluationPlan,
    variants: Sequence[Variant],
    images: Sequence[GeneratedImage],
    cell: int | None = None,
) -> list[Image.Image]:
    """One grid per seed: rows = prompts, columns = variants; every cell ``cell`` pixels square."""
    by_key = {(g.variant.label, g.prompt_index, g.seed_index): g.path for g in images}
    grids = []
    for s in range(len(plan.seeds)):
        tiles = [
            Image.open(by_key[(v.label, p, s)]).convert("RGB")
            for p in range(len(plan.prompts))
            for v in variants
        ]
        size = cell or min(tiles[0].width, MAX_CELL)
        grids.append(image_grid(tiles, cols=len(variants), cell=size))
    return grids


def _figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def metric_plot(summary: dict) -> bytes | None:
    """Each metric against the variants (weight on x for adapter reports); trigger/no-trigger/held-out
    lines where the metric is per image."""
    entries = summary["variants"]
    panels = [m for m in PLOTTED if any(e.get(m) is not None for e in entries)]
    if not panels:
        return None
    numeric = summary.get("kind") == "adapter"
    xs = [e["weight"] for e in entries] if numeric else list(range(len(entries)))
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig = Figure(figsize=(3.4 * cols, 2.8 * rows))
    for i, metric in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        ys = [e.get(metric) for e in entries]
        errors = [e.get("kid_std") or 0 for e in entries] if metric == "kid_mean" else None
        _line(ax, xs, ys, "all", errors)
        for kind in PROMPT_KINDS:
            kind_ys = [e["by_kind"].get(kind, {}).get(metric) for e in entries]
            if metric in ("clip_t", "clip_i", "adherence_all", "style_ok") and any(
                y is not None for y in kind_ys
            ):
                _line(ax, xs, kind_ys, kind, None, style="--")
        ax.set_title(SUMMARY_NAMES[metric], fontsize=10)
        ax.set_xlabel("adapter weight" if numeric else "model")
        if not numeric:
            ax.set_xticks(xs, [e["label"] for e in entries], rotation=30, fontsize=8)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _figure_png(fig)


def _line(ax, xs, ys, label, errors, style="-") -> None:
    points = [(x, y, e) for x, y, e in zip(xs, ys, errors or [0] * len(xs), strict=True) if y is not None]
    if not points:
        return
    px, py, pe = zip(*points, strict=True)
    if errors is not None:
        ax.errorbar(px, py, yerr=pe, marker="o", linestyle=style, label=label, capsize=3)
    else:
        ax.plot(px, py, marker="o", linestyle=style, label=label)


def loss_plot(loss_path: Path | None) -> bytes | None:
    """The training loss curve from ``loss.parquet`` (columns step, loss), with a moving average."""
    if loss_path is None or not Path(loss_path).is_file():
        return None
    table = pq.read_table(loss_path, columns=["step", "loss"]).to_pydict()
    steps, losses = table["step"], table["loss"]
    if not steps:
        return None
    window = max(1, len(losses) // 20)
    smooth = [
        sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
        for i in range(len(losses))
    ]
    fig = Figure(figsize=(6, 3))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(steps, losses, alpha=0.35, label="loss")
    ax.plot(steps, smooth, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _figure_png(fig)


def _table(rows: Sequence[dict[str, str]]) -> str:
    if not rows:
        return "<p>no rows</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _kind_rows(summary: dict) -> list[dict[str, str]]:
    rows = []
    for entry in summary["variants"]:
        for kind, values in entry["by_kind"].items():
            row = {"variant": entry["label"], "prompts": kind, "n": str(values["n"])}
            for key in ("clip_t", "clip_i", "adherence_all", "style_ok", "leaked"):
                row[SUMMARY_NAMES[key]] = "–" if values.get(key) is None else f"{values[key]:.3f}"
            rows.append(row)
    return rows


def _grid_html(grid: Image.Image, plan: EvaluationPlan, variants: Sequence[Variant], seed_index: int) -> str:
    """The grid image in a CSS grid whose row and column labels line up with its cells."""
    cols, rows = len(variants), len(plan.prompts)
    parts = [
        f'<div class="grid" style="grid-template-columns: 22em repeat({cols}, {DISPLAY_CELL}px); '
        f'grid-template-rows: auto repeat({rows}, {DISPLAY_CELL}px)">',
        f'<div style="grid-area: 1 / 1">seed {plan.seeds[seed_index]}</div>',
    ]
    parts += [
        f'<div class="col" style="grid-area: 1 / {c + 2}">{html.escape(v.label)}</div>'
        for c, v in enumerate(variants)
    ]
    for r, prompt in enumerate(plan.prompts):
        parts.append(
            f'<div class="row" style="grid-area: {r + 2} / 1">{html.escape(prompt.text)} '
            f'<span class="kind">{prompt.kind}</span></div>'
        )
    parts.append(
        f'<img alt="seed {seed_index}" src="{data_uri(png_bytes(grid))}" style="grid-column: 2 / span {cols}; '
        f'grid-row: 2 / span {rows}; width: {cols * DISPLAY_CELL}px; height: {rows * DISPLAY_CELL}px">'
    )
    return "".join(parts) + "</div>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
.grid { display: grid; margin: 1em 0 2em; align-items: center; }
.grid img { image-rendering: pixelated; }
.col { text-align: center; font-weight: bold; }
.row { font-size: 0.85em; padding-right: 0.5em; }
.kind { color: #888; font-size: 0.85em; }
.pass { color: #080; } .fail { color: #b00; }
.seeds { display: flex; flex-wrap: wrap; gap: 1.2em; } .seed { text-align: center; font-size: 0.8em; }
.cells { display: flex; flex-wrap: wrap; gap: 0.3em; }
.cell { margin: 0; width: 10em; font-size: 0.75em; overflow-wrap: anywhere; } .cell img { image-rendering: pixelated; }
.cell.miss img { outline: 3px solid #b00; } .why { color: #b00; }
"""


def render_html(
    *,
    title: str,
    summary: dict,
    plan: EvaluationPlan,
    variants: Sequence[Variant],
    grids: Sequence[Image.Image],
    facts: dict[str, str],
    metric_png: bytes | None,
    loss_png: bytes | None,
    verdict: tuple[bool, Sequence[str]] | None = None,
    cells: Sequence[tuple[GeneratedImage, dict]] = (),
) -> str:
    """The whole report as one HTML string (pictures inlined; nothing else is referenced).

    ``cells`` (each image with its manifest row) give the per-prompt view: for every prompt, each
    seed's variants side by side with what the shapes checker read under each image, and every miss
    gathered in one section (``misses``). Without them the page shows the seed grids."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    out.append(f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    out.append(_table([{"": k, "value": v} for k, v in facts.items()]))
    if verdict is not None:
        passed, reasons = verdict
        out.append(f"<h2 class='{'pass' if passed else 'fail'}'>{'PASS' if passed else 'FAIL'}</h2>")
        out.append("<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in reasons) + "</ul>")
    gains = summary.get("gains")
    if gains:
        out.append(
            "<p>Trigger prompts, weight 1 vs weight 0: style rate gain <b>"
            + ("–" if gains["style"] is None else f"{gains['style']:.3f}")
            + "</b>, CLIP-T gain <b>"
            + ("–" if gains["clip_t"] is None else f"{gains['clip_t']:.4f}")
            + "</b> (cosine units); leakage (no-trigger images changed at weight 1) <b>"
            + ("–" if gains.get("leakage") is None else f"{gains['leakage']:.3f}")
            + "</b>.</p>"
        )
    out.append("<h2>Metrics</h2>" + _table(metric_table_rows(summary)))
    out.append("<h3>By prompt kind</h3>" + _table(_kind_rows(summary)))
    out.append(f"<p><i>{html.escape(CAVEATS)}</i></p>")
    if metric_png:
        out.append(f"<h2>Metrics by {'weight' if summary.get('kind') == 'adapter' else 'model'}</h2>")
        out.append(f'<img alt="metrics" src="{data_uri(metric_png)}">')
    if loss_png:
        out.append(f'<h2>Training loss</h2><img alt="loss" src="{data_uri(loss_png)}">')
    if cells:
        out.append(_misses_html(cells, plan))
        out.append(_prompts_html(cells, plan, variants))
    else:
        out.append("<h2>Images</h2><p>One grid per seed: rows are prompts, columns are variants.</p>")
        out += [_grid_html(grid, plan, variants, s) for s, grid in enumerate(grids)]
    return "".join(out) + "</body></html>"


def reading_text(row: dict) -> str:
    """What the shapes checker read in one image, as shown under it ("" off the shapes world)."""
    if row.get("adherence_all") is None:
        return ""
    if row.get("read_shape") is None:
        return f"unreadable: {row.get('read_problem') or 'no shape found'}"
    return f"{row['read_colour']} {row['read_shape']}, {row['read_background']} ground, {row['read_style']}"


def misses(row: dict, target_style: str | None) -> list[str]:
    """Why an image is a miss, one reason per failure (empty: not a miss): content the prompt asked
    for and did not get; the target style missing from a trigger prompt at weight 1; leakage."""
    reasons = []
    if row.get("adherence_all") is False:
        wrong = [a for a in ("colour", "shape", "background") if row.get(f"{a}_ok") is False]
        reasons.append("content: wrong " + (", ".join(wrong) or "reading"))
    if (
        target_style is not None
        and row.get("prompt_kind") != "no_trigger"
        and row.get("weight") == 1.0
        and row.get("style_ok") is False
    ):
        reasons.append(f"style: read {row.get('read_style') or 'nothing'}, wanted {target_style}")
    if row.get("leaked"):
        reasons.append(f"leaked: {row.get('leaked_attributes')} changed from weight 0")
    return reasons


def _cell_html(image: GeneratedImage, row: dict, label: str, reasons: Sequence[str]) -> str:
    with Image.open(image.path) as tile:
        png = png_bytes(tile.convert("RGB"))
    klass = "cell miss" if reasons else "cell"
    under = html.escape(reading_text(row))
    why = "".join(f"<br><span class='why'>✗ {html.escape(r)}</span>" for r in reasons)
    return (
        f"<figure class='{klass}'><img alt='{html.escape(label)}' src='{data_uri(png)}' "
        f"width='{DISPLAY_CELL}' height='{DISPLAY_CELL}'><figcaption><b>{html.escape(label)}</b>"
        f"<br>{under}{why}</figcaption></figure>"
    )


def _prompts_html(cells: Sequence[tuple[GeneratedImage, dict]], plan: EvaluationPlan, variants) -> str:
    by_key = {(g.prompt_index, g.seed_index, g.variant.label): (g, r) for g, r in cells}
    out = [
        "<h2>Images by prompt</h2><p>For each prompt and seed, the variants side by side, with what the "
        "shapes checker read under each image; ✗ marks a miss.</p>"
    ]
    for p, prompt in enumerate(plan.prompts):
        out.append(
            f"<h3>{html.escape(prompt.text)} <span class='kind'>{prompt.kind}</span></h3><div class='seeds'>"
        )
        for s, seed in enumerate(plan.seeds):
            here = [by_key[(p, s, v.label)] + (v.label,) for v in variants if (p, s, v.label) in by_key]
            figures = [_cell_html(g, r, label, misses(r, plan.target_style)) for g, r, label in here]
            out.append(f"<div class='seed'><div class='cells'>{''.join(figures)}</div>seed {seed}</div>")
        out.append("</div>")
    return "".join(out)


def _misses_html(cells: Sequence[tuple[GeneratedImage, dict]], plan: EvaluationPlan) -> str:
    missed = [(g, r, misses(r, plan.target_style)) for g, r in cells]
    missed = [(g, r, why) for g, r, why in missed if why]
    out = [f"<h2>Misses ({len(missed)} of {len(cells)} images)</h2>"]
    if not missed:
        return out[0] + "<p>none</p>"
    out.append("<div class='cells'>")
    for image, row, why in missed:
        label = f"{image.variant.label}, seed {row['seed']}: {row['prompt']}"
        out.append(_cell_html(image, row, label, why))
    return "".join(out) + "</div>"
