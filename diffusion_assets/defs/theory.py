"""The ``theory_report`` asset: Lab 2.6.1 as a page a person opens."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from diffusion_assets import paths
from diffusion_assets.shapes.config import UnetConfig
from diffusion_assets.theory.recipes import RECIPES

from .resources import ProjectResource
from .shapes import shapes_tiny


class TheoryReportConfig(dg.Config):
    """How long each recipe trains; the comparison needs a few minutes of CPU per recipe."""

    steps: int = Field(600, gt=0, description="UNet training steps per recipe (same for all).")
    recipes: list[str] = Field(
        default_factory=lambda: list(RECIPES), description="Keys of theory.compare.RECIPES."
    )
    eval_n: int = Field(32, gt=0, description="Samples per split scored by the exact checker.")
    threads: int = Field(2, gt=0, description="torch CPU threads.")


@dg.asset(
    group_name="theory", deps=[shapes_tiny], code_version="theory-report-v1", kinds={"html", "matplotlib"}
)
def theory_report(config: TheoryReportConfig, project: ProjectResource) -> dg.MaterializeResult:
    """Noise schedules in theory and practice: ᾱ_t and SNR(t) curves, forward-noising strips, and the
    shapes-world UNet trained under linear, cosine and zero-terminal-SNR recipes, side by side."""
    from diffusion_assets.theory.compare import compare_recipes  # noqa: PLC0415
    from diffusion_assets.theory.report import write_figures, write_report  # noqa: PLC0415

    out = project.data_dir() / "reports" / "theory"

    def model(name: str) -> Path:
        return paths.local_model_path(f"models/{name}", project.root_dir(), project.models_dir())

    figures = write_figures(out)
    unknown = sorted(set(config.recipes) - set(RECIPES))
    if unknown:
        raise ValueError(f"unknown recipes {unknown}; choose from {sorted(RECIPES)}")
    comparison = compare_recipes(
        out / "recipes",
        model("shapes-tiny") / "vae",
        model("shapes-tiny-clip"),
        model("shapes-tiny") / "tokenizer",
        UnetConfig(steps=config.steps, warmup_steps=min(100, config.steps // 10)),
        {k: RECIPES[k] for k in config.recipes},
        threads=config.threads,
        eval_n=config.eval_n,
    )
    page = write_report(out, figures, comparison, config.steps)
    table = "\n".join(
        f"| {r['recipe']} | {r['seen_all']:.2f} | {r['held_out_all']:.2f} |" for r in comparison
    )
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(page)),
            "adherence": dg.MetadataValue.md("| recipe | seen | held-out |\n|---|---|---|\n" + table),
        }
    )
