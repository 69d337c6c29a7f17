"""Evaluation reports for LoRA adapters and model comparisons (plain modules, no Dagster).

``plan`` fixes prompts x seeds x weights, ``generate`` renders them, ``metrics`` scores them (CLIP-T,
CLIP-I, KID, FD, diversity, shapes adherence), ``tables`` and ``report`` write the rows, summary and
self-contained HTML, ``checks`` is the blocking verdict, and ``evaluate`` ties them together.
"""

from diffusion_assets.evaluation.checks import evaluation_passes
from diffusion_assets.evaluation.evaluate import (
    EvaluationResult,
    RunSettings,
    compare_models,
    evaluate_adapter,
)
from diffusion_assets.evaluation.plan import (
    EvaluationPlan,
    ModelComparisonPlan,
    PlanPrompt,
    eval_seeds,
    shapes_plan,
    tuning_seeds,
)

__all__ = [
    "EvaluationPlan",
    "EvaluationResult",
    "ModelComparisonPlan",
    "PlanPrompt",
    "RunSettings",
    "compare_models",
    "eval_seeds",
    "tuning_seeds",
    "evaluate_adapter",
    "evaluation_passes",
    "shapes_plan",
]
