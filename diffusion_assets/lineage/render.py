"""Human-readable lineage: sections of aligned ``key : value`` lines, lists as indented items."""

from __future__ import annotations

from collections.abc import Sequence

Pairs = list[tuple[str, object]]
MAX_GROUPS = 8


def block(pairs: Pairs, indent: int = 2) -> list[str]:
    """Aligned ``key : value`` lines; pairs whose value is None or empty are left out."""
    shown = [(k, v) for k, v in pairs if v not in (None, "", [], {})]
    width = max((len(k) for k, _ in shown), default=0)
    return [f"{' ' * indent}{k:<{width}} : {v}" for k, v in shown]


def section(title: str, pairs: Pairs) -> list[str]:
    return ["", title, *block(pairs)]


def items(title: str, entries: Sequence[tuple[str, Pairs]]) -> list[str]:
    lines = ["", f"{title} ({len(entries)})"]
    if not entries:
        lines.append("  (none)")
    for head, pairs in entries:
        lines += [f"  - {head}", *block(pairs, indent=6)]
    return lines


def table(records: Sequence[dict], columns: Sequence[str], indent: int = 2) -> list[str]:
    cells = [[str(r.get(c) if r.get(c) is not None else "-") for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    fmt = " " * indent + "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*columns).rstrip(), *(fmt.format(*row).rstrip() for row in cells)]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _header(doc: dict, title: str) -> list[str]:
    lines = [title]
    if doc.get("integrity", {}).get("status") == "modified":
        lines.append(f"!! {doc['integrity']['message']}")
    return lines + [f"note: {n}" for n in doc["notes"]]


def adapter_pairs(a: dict) -> Pairs:
    recipe = (
        f"rank {a['rank']}, alpha {a['alpha']}, lr {a['learning_rate']}, {a['steps']} steps, "
        f"batch {a['batch_size']}, {a['resolution']} px, seed {a['seed']}"
    )
    return [
        ("trained on", f"{a['dataset']}@{a['dataset_version']}"),
        ("base model", f"{a['base_model_id']} ({a['base_weights_hash']})"),
        ("pipeline", a["pipeline_class"]),
        ("trigger", a["trigger_word"]),
        ("recipe", recipe),
        ("final loss", _fmt(a["final_loss"], 4)),
        ("file", f"{a['path']} (sha256 {a['sha256']})"),
        ("run", f"{a['dagster_run_id'] or '-'}, created {a['created_at']}"),
    ]


def _adapters(adapters: list[dict]) -> list[str]:
    return items("Adapters", [(a["adapter_id"], adapter_pairs(a)) for a in adapters])


def _evaluations(reports: list[dict]) -> list[str]:
    entries = []
    for r in reports:
        pairs = [
            (
                f"weight {w['weight']}" if w["weight"] is not None else "compared",
                f"n={w['n']}  CLIP-T {_fmt(w['clip_t'], 2)}  CLIP-I {_fmt(w['clip_i'])}  "
                f"adherence {_fmt(w['adherence'], 2)}  style {_fmt(w['style_rate'], 2)}",
            )
            for w in r["weights"]
        ]
        head = (
            f"{r['report_id']} (adapter {r['adapter_id']}, model {r['model']}, {r['n']} images, "
            f"{r['created_at']})"
        )
        entries.append((head, pairs))
    return items("Evaluations", entries)


def render_forward(doc: dict) -> str:
    """The forward lineage document as text."""
    image, cat, entry, seed = doc["image"], doc["catalog"], doc["entry"], doc["seed"]
    model, sched, run = doc["model"], doc["scheduler"], doc["run"]
    source = "PNG metadata only" if doc["source"] == "png" else "manifests"
    lines = _header(doc, f"Lineage of image {image['image_id']}  (source: {source}; store: {doc['store']})")
    size = f"{image['width']}x{image['height']}" if image["width"] else None
    lines += section(
        "Image",
        [
            ("image id", image["image_id"]),
            ("recorded path", image["path"]),
            ("current file", image["current_path"] if image["moved"] else None),
            ("size", size),
            ("sha256", image["sha256"]),
            ("pixel sha256", image["pixel_sha256"]),
            ("integrity", doc["integrity"]["message"]),
            ("retired", "yes: the catalog no longer asks for this image" if image["retired"] else None),
        ],
    )
    tvars = ", ".join(f"{k}={v}" for k, v in entry["template_vars"].items())
    batch = f"batch {seed['batch_id']} position {seed['batch_index']} of {seed['batch_size']}"
    lines += section(
        "Catalog",
        [
            ("file", f"{cat['file']} ({cat['current']} on disk)"),
            ("sha256", cat["sha256"]),
            ("partition", f"{cat['name']} / {cat['date']}"),
            ("entry", f"{entry['entry_id']} (base {entry['base_entry_id']}, sample {entry['sample_index']})"),
            ("template vars", tvars),
            ("prompt", entry["prompt"]),
            ("negative", entry["negative_prompt"]),
            (
                "seed",
                f"{seed['seed']} (derivation v{seed['derivation']}, "
                f"{seed['generator_device']} generator; {batch})",
            ),
        ],
    )
    ref, ctl, lora = model["refiner"], model["controlnet"], model["lora"]
    lines += section(
        "Model",
        [
            ("preset", model["preset"]),
            ("model id", model["model_id"] + (f" @ {model['revision']}" if model["revision"] else "")),
            ("weights hash", model["weights_hash"]),
            ("pipeline", f"{model['pipeline_class']} ({model['dtype']})"),
            ("refiner", ref and f"{ref['model_id']} ({ref['weights_hash']}), switch at {ref['switch']}"),
            ("controlnet", ctl and f"{ctl['model_id']} ({ctl['weights_hash']}), scale {ctl['scale']}"),
            ("control image", ctl and ctl["image_path"] and f"{ctl['image_path']} ({ctl['image_sha256']})"),
            ("lora", lora and f"{lora['path']} ({lora['weights_hash']}), scale {lora['scale']}"),
        ],
    )
    settings = ", ".join(f"{k}={v}" for k, v in sched["settings"].items())
    lines += section(
        "Scheduler",
        [
            ("name", f"{sched['name']} (sampler {sched['sampler']})"),
            ("class", sched["class"]),
            ("settings", settings),
            ("steps", sched["steps"]),
            ("guidance", f"{sched['guidance_scale']} ({sched['guidance_kind']})"),
            ("true cfg", sched["true_cfg_scale"]),
        ],
    )
    lines += section(
        "Run",
        [
            ("dagster run", run["dagster_run_id"] or "(not recorded in the PNG)"),
            ("partition key", run["partition_key"]),
            ("code version", run["asset_code_version"]),
            ("created", run["created_at"]),
            ("device", f"{run['device']} ({run['device_name']})"),
        ],
    )
    captions = [
        (
            repr(c["caption"]) + (" (retired: an earlier catalog or captioner)" if c.get("retired") else ""),
            [
                (
                    "captioner",
                    f"{c['captioner_id']} ({c['captioner_mode']}, "
                    f"weights {c['captioner_weights_hash'] or '-'})",
                ),
                ("template", c["template"]),
                ("run", f"{c['dagster_run_id'] or '-'}, created {c['created_at']}"),
            ],
        )
        for c in doc["captions"]
    ]
    lines += items("Captions", captions)
    datasets = [
        (
            f"{m['dataset']}@{m['dataset_version']} ({m['split']})",
            [("caption", m["caption"]), ("file", m["file_name"])],
        )
        for m in doc["datasets"]
    ]
    lines += items("Datasets", datasets)
    lines += _adapters(doc["adapters"]) + _evaluations(doc["evaluations"])
    return "\n".join(lines)


def _groups(groups: list[dict], label) -> str:
    shown = [f"{label(g)} {g['images']}" for g in groups[:MAX_GROUPS]]
    more = f", … {len(groups) - MAX_GROUPS} more" if len(groups) > MAX_GROUPS else ""
    return ", ".join(shown) + more


def render_reverse(doc: dict) -> str:
    """The reverse lineage document as text."""
    query = doc["query"]
    lines = _header(doc, f"Lineage of {query['as']} {query['target']}  (store: {doc['store']})")
    if doc["adapter"]:
        lines += section(
            "Adapter", [("adapter id", doc["adapter"]["adapter_id"]), *adapter_pairs(doc["adapter"])]
        )
    versions = [
        (
            f"{v['dataset']}@{v['dataset_version']}: {v['images']} images "
            f"(train {v['train']}, validation {v['validation']})",
            [
                ("spec", f"{v['spec_file']} (sha256 {v['spec_sha256']})"),
                ("built", f"{v['created_at']}, run {v['dagster_run_id'] or '-'}"),
            ],
        )
        for v in doc["datasets"]
    ]
    lines += items("Datasets", versions)
    s = doc["sources"]
    lines += section(
        "Sources",
        [
            ("member images", s["images"]),
            ("with generation row", s["with_generation_row"]),
            ("missing", s["missing"]),
            ("retired", s["retired"]),
            ("changed since build", s["changed_since_build"]),
            ("by catalog", _groups(s["by_catalog"], lambda g: g["catalog"])),
            ("by date", _groups(s["by_date"], lambda g: g["date"])),
            (
                "by model",
                _groups(
                    s["by_model"],
                    lambda g: f"{g['preset']} ({g['model_id']}, {(g['weights_hash'] or '-')[:12]})",
                ),
            ),
            ("by run", _groups(s["by_run"], lambda g: g["dagster_run_id"] or "-")),
        ],
    )
    shown = doc["images"]
    lines += ["", f"Images ({len(shown)} of {s['images']}; --limit to change)"]
    columns = ("image_id", "split", "catalog", "date", "entry_id", "seed", "preset", "dagster_run_id")
    lines += table(shown, columns) if shown else ["  (none)"]
    if doc["adapter"] is None:
        lines += _adapters(doc["adapters"])
    lines += _evaluations(doc["evaluations"])
    return "\n".join(lines)
