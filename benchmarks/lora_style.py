"""Shapes-world style LoRA: build the outline dataset, train the adapter, measure it with the exact checker.

One run does the whole loop of issue 4 on CPU, without Dagster:

1. **dataset**: ``--images-per-prompt`` outlined renders of every *seen* colour x shape x background combo
   (held-out pairs red triangle, green square, blue circle never appear), captioned
   ``"a red circle on a gray background, in sks outline style"``, plus ``--prior-per-prompt`` plain
   FILLED renders of the same combos captioned without the trigger (prior preservation, DreamBooth-style).
   Images come from the shapes world's own renderer (``shapes.world.draw`` + ``random_placement``, what the
   ``shapes-render`` pipeline calls) and captions from ``shapes.captions.caption`` (what the shapes
   captioner reads exactly, with the trigger phrase as the spec's suffix); it is written as the same
   imagefolder (``train/metadata.jsonl``) the ``lora_dataset`` asset builds;
2. **training**: ``training.train_lora`` with the recipe of ``lora_datasets/shapes_outline.yaml``'s
   ``training:`` section, overridden by the command-line flags;
3. **evaluation** on tuning seeds (``evaluation.plan.tuning_seeds``: base 20261101, indices
   ``seeds.TUNING_SEED_INDICES``, never the report seeds of ``eval_seeds`` nor the training seeds), 20 DDIM steps, guidance 2, at adapter weights 0 (the base model) and 1, on
   ``trigger`` prompts (seen combos + the trigger phrase), ``held_out`` prompts (held-out pairs + the
   trigger phrase) and ``no_trigger`` prompts (seen combos, no trigger), each image read by
   ``shapes.checker.read_image``.

Printed (and appended as a JSON line to ``--log``): style rate = fraction read as ``outlined`` on trigger +
held-out prompts at weight 1 (goal >= 0.90) and at weight 0 (goal <= 0.05); adherence = colour and shape and
background correct, on the same prompts/seeds at weight 1 vs weight 0 (goal: within 5 points);
leakage = fraction of no-trigger images in which the checker reads anything (style, colour, shape,
background) other than at weight 0, the evaluation's own rule (``evaluation.tables.leaked_attributes``;
goal <= 0.05); and the training CPU minutes.

    python benchmarks/lora_style.py [--steps 1200] [--prior-per-prompt 4] [--lr 5e-4] ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusion_assets.evaluation.plan import seed_range, tuning_seeds  # noqa: E402
from diffusion_assets.evaluation.tables import READ_ATTRIBUTES, leaked_attributes  # noqa: E402
from diffusion_assets.seeds import cpu_generator  # noqa: E402
from diffusion_assets.shapes.captions import STYLE_PHRASES, ShapeAttrs, caption  # noqa: E402
from diffusion_assets.shapes.checker import read_image  # noqa: E402
from diffusion_assets.shapes.world import all_combos, draw, random_placement, to_pil  # noqa: E402

SPEC = ROOT / "lora_datasets" / "shapes_outline.yaml"
DATA_SEED = 7  # the source catalog's seed (prompts/shapes_outline.yaml)
TRAINING_FLAGS = {
    "rank": int,
    "alpha": float,
    "learning_rate": float,
    "lr_warmup_steps": int,
    "steps": int,
    "batch_size": int,
    "min_snr_gamma": float,
    "latents": str,
    "weight_decay": float,
    "seed": int,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, default=ROOT / "models" / "shapes-tiny")
    parser.add_argument(
        "--spec", type=Path, default=SPEC, help="dataset spec whose training: section is the default recipe"
    )
    parser.add_argument(
        "--images-per-prompt", type=int, help="outlined renders per seen combo (default: the catalog's)"
    )
    parser.add_argument(
        "--prior-per-prompt",
        type=int,
        default=None,
        help="filled, trigger-less renders per seen combo (default: the prior catalog's, 0 if none)",
    )
    for name, kind in TRAINING_FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    parser.add_argument(
        "--target-modules", help="comma-separated module names (default: the spec's / family's)"
    )
    parser.add_argument(
        "--no-min-snr", action="store_true", help="override the spec's min_snr_gamma with None"
    )
    parser.add_argument("--seeds", type=int, default=4, help="evaluation seeds per prompt")
    parser.add_argument(
        "--n-seen", type=int, default=15, help="seen combos evaluated (spread over colour/shape/background)"
    )
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--eval-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, help="keep the dataset/adapter here (default: a temp folder)")
    parser.add_argument("--adapter", type=Path, help="evaluate this adapter instead of training one")
    parser.add_argument("--label", default="")
    parser.add_argument("--log", type=Path, help="append the result as one JSON line")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- 1. dataset


def _catalog_count(name: str, fallback: int) -> int:
    path = ROOT / "prompts" / f"{name}.yaml"
    if not path.is_file():
        return fallback
    import yaml  # noqa: PLC0415

    data = yaml.safe_load(path.read_text())
    return int((data.get("defaults") or {}).get("images_per_prompt", fallback))


def build_dataset(folder: Path, per_prompt: int, prior_per_prompt: int) -> tuple[Path, str, int]:
    """Write ``folder/train`` (imagefolder); return the folder, a content hash and the image count."""
    train = folder / "train"
    train.mkdir(parents=True, exist_ok=True)
    phrase = STYLE_PHRASES["outlined"]
    rows = []
    index = 0
    for style, count in (("outlined", per_prompt), ("filled", prior_per_prompt)):
        for attrs in all_combos(split="seen"):
            styled = ShapeAttrs(attrs.colour, attrs.shape, attrs.background, style)
            text = caption(styled)
            if style == "outlined":
                assert text.endswith(phrase)
            for _ in range(count):
                rng = np.random.default_rng([DATA_SEED, index])
                name = f"{index:05d}.png"
                to_pil(draw(styled, random_placement(rng))).save(train / name)
                rows.append({"file_name": name, "text": text, "image_id": f"img-{index:05d}"})
                index += 1
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (train / "metadata.jsonl").write_text(lines)
    digest = hashlib.sha256(lines.encode()).hexdigest()[:16]
    return folder, f"bench-{per_prompt}-{prior_per_prompt}-{digest}", len(rows)


# ---------------------------------------------------------------- 2. training


def training_config(args: argparse.Namespace):
    from diffusion_assets.datasets.load import load_spec  # noqa: PLC0415
    from diffusion_assets.training.config import LoraTrainConfig  # noqa: PLC0415

    spec = load_spec(args.spec).spec
    fields = spec.training.trainer_fields(spec.resolution)
    for name in TRAINING_FLAGS:
        value = getattr(args, name)
        if value is not None:
            fields[name] = value
    if args.no_min_snr:
        fields["min_snr_gamma"] = None
    if args.target_modules:
        fields["target_modules"] = tuple(args.target_modules.split(","))
    fields.update(checkpoint_every=0, validation_every=0)
    return LoraTrainConfig(**fields)


def train(args: argparse.Namespace, work: Path, config) -> tuple[Path, float, dict]:
    from diffusion_assets.training.config import LoraLineage  # noqa: PLC0415
    from diffusion_assets.training.lora import train_lora  # noqa: PLC0415

    per_prompt = args.images_per_prompt or _catalog_count("shapes_outline", 4)
    prior = args.prior_per_prompt
    if prior is None:
        prior = (
            _catalog_count("shapes_filled_prior", 0)
            if (ROOT / "prompts" / "shapes_filled_prior.yaml").is_file()
            else 0
        )
    dataset_dir, version, n_images = build_dataset(work / "dataset", per_prompt, prior)
    lineage = LoraLineage(
        dataset="shapes_outline_bench",
        dataset_version=version,
        base_model_id=str(args.base),
        trigger_word="sks",
    )
    cpu0 = time.process_time()

    def progress(step: int, loss: float) -> None:
        if step % 100 == 0:
            print(f"step {step} loss {loss:.4f} ({time.process_time() - cpu0:.0f} CPU s)", flush=True)

    result = train_lora(
        dataset_dir,
        args.base,
        work / "adapter",
        config,
        lineage,
        cache_root=work / "cache",
        resume=False,
        callback=progress,
    )
    cpu_minutes = (time.process_time() - cpu0) / 60
    info = {
        "images": n_images,
        "outlined_per_prompt": per_prompt,
        "prior_per_prompt": prior,
        "train_seconds": round(result.train_seconds, 1),
        "final_loss": round(result.final_loss, 5),
    }
    return result.weights_path, cpu_minutes, info


# ---------------------------------------------------------------- 3. evaluation


def _spread(items: list, n: int) -> list:
    return list(items) if n >= len(items) else [items[(i * len(items)) // n] for i in range(n)]


def eval_prompts(n_seen: int) -> list[tuple[str, str]]:
    """(kind, prompt) pairs: seen combos with / without the trigger, held-out combos with it."""
    seen = all_combos(split="seen")
    # step through colour-shape pairs and backgrounds so every background appears
    order = sorted(seen, key=lambda a: (seen.index(a) % 3, seen.index(a)))
    picked = _spread(order, n_seen)
    held = all_combos(split="held_out")
    out = [("trigger", caption(ShapeAttrs(a.colour, a.shape, a.background, "outlined"))) for a in picked]
    out += [("held_out", caption(ShapeAttrs(a.colour, a.shape, a.background, "outlined"))) for a in held]
    out += [("no_trigger", caption(a)) for a in picked]
    return out


def generate(pipe, prompts: list[str], seeds: tuple[int, ...], args, batch: int = 32) -> list:
    cells = [(p, s) for p in prompts for s in seeds]
    images = []
    for start in range(0, len(cells), batch):
        chunk = cells[start : start + batch]
        out = pipe(
            [p for p, _ in chunk],
            generator=[cpu_generator(s) for _, s in chunk],
            num_inference_steps=args.eval_steps,
            guidance_scale=args.guidance,
            height=32,
            width=32,
        )
        images.extend(out.images)
    return images


def evaluate(args: argparse.Namespace, adapter: Path) -> dict:
    from diffusers import DiffusionPipeline  # noqa: PLC0415

    from diffusion_assets.shapes.captions import parse_caption  # noqa: PLC0415

    pipe = DiffusionPipeline.from_pretrained(args.base, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    prompts = eval_prompts(args.n_seen)
    seeds = tuning_seeds(args.seeds)
    texts = [p for _, p in prompts]
    readings: dict[float, list] = {}
    for weight in (0.0, 1.0):
        if weight > 0:
            pipe.load_lora_weights(str(adapter), adapter_name="style")
            pipe.set_adapters(["style"], [weight])
        images = generate(pipe, texts, seeds, args)
        readings[weight] = [read_image(im).attrs for im in images]
    kinds = [k for k, _ in prompts for _ in seeds]
    targets = [parse_caption(p) for _, p in prompts for _ in seeds]

    def rate(weight: float, kinds_in: tuple[str, ...], test) -> float:
        rows = [test(r, t) for r, t, k in zip(readings[weight], targets, kinds, strict=True) if k in kinds_in]
        return round(float(np.mean(rows)), 4)

    def outlined(r, _t):
        return r is not None and r.style == "outlined"

    def content(r, t):
        return r is not None and (r.colour, r.shape, r.background) == (t.colour, t.shape, t.background)

    def leakage() -> float:
        def row(r, kind: str) -> dict:
            values = {"prompt_kind": kind}
            for attr in READ_ATTRIBUTES:
                values[f"read_{attr}"] = None if r is None else getattr(r, attr)
            return values

        pairs = zip(readings[0.0], readings[1.0], kinds, strict=True)
        changed = [
            bool(leaked_attributes(row(r0, k), row(r1, k), "outlined"))
            for r0, r1, k in pairs
            if k == "no_trigger"
        ]
        return round(float(np.mean(changed)), 4)

    styled = ("trigger", "held_out")
    out = {
        "n_trigger_images": sum(k in styled for k in kinds),
        "n_no_trigger_images": sum(k == "no_trigger" for k in kinds),
        "seeds": list(seeds),
        "seed_range": seed_range(seeds),
        "style_w1": rate(1.0, styled, outlined),
        "style_w1_seen": rate(1.0, ("trigger",), outlined),
        "style_w1_held_out": rate(1.0, ("held_out",), outlined),
        "style_w0": rate(0.0, styled, outlined),
        "adherence_w0": rate(0.0, styled, content),
        "adherence_w1": rate(1.0, styled, content),
        "adherence_w1_held_out": rate(1.0, ("held_out",), content),
        "adherence_w0_held_out": rate(0.0, ("held_out",), content),
        "leakage_w1": leakage(),
        "no_trigger_adherence_w0": rate(0.0, ("no_trigger",), content),
        "no_trigger_adherence_w1": rate(1.0, ("no_trigger",), content),
    }
    out["adherence_drop_points"] = round(100 * (out["adherence_w0"] - out["adherence_w1"]), 1)
    out["goals_met"] = (
        out["style_w1"] >= 0.9
        and out["style_w0"] <= 0.05
        and out["adherence_drop_points"] <= 5
        and out["leakage_w1"] <= 0.05
    )
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result: dict = {"label": args.label}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if args.adapter is None:
            config = training_config(args)
            result["config"] = json.loads(config.to_json())
            adapter, cpu_minutes, info = train(args, work, config)
            result.update(info, train_cpu_minutes=round(cpu_minutes, 2))
            print(f"trained {adapter} in {cpu_minutes:.1f} CPU min: {info}", flush=True)
        else:
            adapter = args.adapter
        t0 = time.time()
        result.update(evaluate(args, adapter))
        result["eval_seconds"] = round(time.time() - t0, 1)
    keys = (
        "style_w1",
        "style_w1_seen",
        "style_w1_held_out",
        "style_w0",
        "adherence_w0",
        "adherence_w1",
        "adherence_drop_points",
        "leakage_w1",
        "no_trigger_adherence_w1",
        "goals_met",
    )
    print(" ".join(f"{k}={result[k]}" for k in keys), flush=True)
    print(
        f"on {result['n_trigger_images']} trigger and {result['n_no_trigger_images']} no-trigger images; "
        f"{result['seed_range']}",
        flush=True,
    )
    if args.log:
        with args.log.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
