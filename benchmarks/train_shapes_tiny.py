"""Train the ``shapes-tiny`` preset and print prompt adherence against training minutes.

    python benchmarks/train_shapes_tiny.py                      # full recipe -> models/shapes-tiny
    python benchmarks/train_shapes_tiny.py --quick --out /tmp/shapes-tiny
    python benchmarks/train_shapes_tiny.py --set unet.steps=8000 --eval-every 2000

At every ``--eval-every`` UNet steps the EMA weights are scored in memory (64 seen + 64 held-out
prompts, 20 steps, guidance 2); evaluation time is excluded from the training minutes, which are
CPU minutes (process time; on a shared machine wall-clock time also counts other jobs). The shipped
folder is then reloaded from disk and scored over a small guidance grid.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from diffusion_assets.shapes.assemble import build_pipeline
from diffusion_assets.shapes.config import TrainConfig
from diffusion_assets.shapes.evaluate import evaluate_adherence, evaluate_pipeline
from diffusion_assets.shapes.train import train_shapes_tiny


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="models/shapes-tiny", help="pipeline folder to write")
    parser.add_argument("--quick", action="store_true", help="seconds-long mechanics check")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--eval-every", type=int, default=0, help="UNet steps between checkpoint scores")
    parser.add_argument("--work-dir", default=None, help="keep stage folders here")
    parser.add_argument("--guidance", type=float, nargs="*", default=[1.5, 2.0, 3.0, 4.0])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    config = (TrainConfig.quick() if args.quick else TrainConfig.full()).with_overrides(args.set)
    every = args.eval_every or max(1, config.unet.steps // 4)
    started = time.perf_counter()
    rows: list[dict] = []
    pre_unet_minutes: list[float] = []

    tmp = tempfile.TemporaryDirectory()
    work = Path(args.work_dir or tmp.name)

    def on_checkpoint(step: int, unet: UNet2DConditionModel, text_encoder: CLIPTextModel) -> None:
        # the VAE and tokenizer stages are on disk by now; the UNet is scored as it is in memory
        pipe = build_pipeline(
            AutoencoderKL.from_pretrained(work / "vae").to(config.device),
            text_encoder,
            CLIPTokenizer.from_pretrained(work / "tokenizer"),
            unet,
            config.unet,
        )
        if not pre_unet_minutes:
            stages = [
                json.loads((work / s / "metrics.json").read_text())["cpu_seconds"] for s in ("vae", "clip")
            ]
            pre_unet_minutes.append(sum(stages) / 60)
        scores = evaluate_pipeline(
            pipe, n=config.eval_n, steps=config.eval_steps, guidance=config.eval_guidance
        )
        # UNet minutes are scaled below from the measured UNet speed (constant per step)
        rows.append({"unet_step": step, "fraction": step / config.unet.steps, **scores})
        print(
            f"unet step {step}: seen {scores['seen_all']:.3f}  held-out {scores['held_out_all']:.3f}",
            flush=True,
        )

    metrics = train_shapes_tiny(
        args.out, config, work_dir=work, evaluate=False, callback=on_checkpoint, callback_every=every
    )
    tmp.cleanup()
    # the table: CPU minutes of training at each checkpoint (UNet minutes scale with steps at constant speed)
    unet_minutes = metrics["unet"]["cpu_seconds"] / 60
    print(f"\nCPU minutes | unet step | seen adherence | held-out adherence  (n={config.eval_n}, 20 steps)")
    for row in rows:
        minutes = pre_unet_minutes[0] + row["fraction"] * unet_minutes
        print(
            f"{minutes:11.1f} | {row['unet_step']:9d} | {row['seen_all']:14.3f} | {row['held_out_all']:.3f}"
        )
    # the shipped folder, reloaded from disk, over a guidance grid
    final = {}
    for guidance in args.guidance:
        final[str(guidance)] = evaluate_adherence(
            args.out, n=config.eval_n, steps=config.eval_steps, guidance=guidance
        )
        f = final[str(guidance)]
        print(
            f"shipped, guidance {guidance}: seen {f['seen_all']:.3f} held-out {f['held_out_all']:.3f}",
            flush=True,
        )
    metrics["checkpoints"] = rows
    metrics["adherence_by_guidance"] = final
    metrics["wall_minutes"] = (time.perf_counter() - started) / 60
    (Path(args.out) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(
        json.dumps({k: metrics[k] for k in ("vae", "clip", "unet", "train_minutes", "cpu_minutes")}, indent=2)
    )


if __name__ == "__main__":
    main()
