"""Evaluation plans: fixed prompts of three kinds, shared derived seeds, weights that include 0."""

from __future__ import annotations

import pytest

from diffusion_assets.evaluation.plan import (
    EVAL_BASE_SEED,
    EvaluationPlan,
    ModelComparisonPlan,
    PlanPrompt,
    eval_seeds,
    shapes_plan,
    shapes_style_for,
)
from diffusion_assets.seeds import derive_seed
from diffusion_assets.shapes.captions import STYLE_PHRASES, parse_caption
from diffusion_assets.shapes.world import is_held_out


def test_shapes_plan_has_trigger_twins_and_held_out_combos():
    plan = shapes_plan("outlined", n_seen=4, n_held_out=2, n_seeds=3)
    kinds = [p.kind for p in plan.prompts]
    assert kinds == ["trigger"] * 4 + ["no_trigger"] * 4 + ["held_out"] * 2
    triggers = [p.text for p in plan.prompts if p.kind == "trigger"]
    plain = [p.text for p in plan.prompts if p.kind == "no_trigger"]
    assert triggers == [f"{t}, {STYLE_PHRASES['outlined']}" for t in plain]
    held = [parse_caption(p.text) for p in plan.prompts if p.kind == "held_out"]
    assert all(is_held_out(a) and a.style == "outlined" for a in held)
    assert not any(is_held_out(parse_caption(t)) for t in plain)
    assert (plan.target_style, plan.checker, plan.weights) == ("outlined", "shapes", (0.0, 0.5, 1.0))


def test_seeds_are_derived_from_the_documented_base_and_extend():
    assert eval_seeds(3) == tuple(derive_seed(EVAL_BASE_SEED, "evaluation", i) for i in range(3))
    assert eval_seeds(5)[:3] == eval_seeds(3)
    assert eval_seeds(2, base_seed=1) != eval_seeds(2)


def test_every_cell_is_one_prompt_seed_pair():
    plan = shapes_plan(n_seen=2, n_held_out=1, n_seeds=2)
    assert plan.cells() == [(p, s) for p in range(5) for s in range(2)]


def test_unstyled_plan_for_base_models():
    plan = shapes_plan(style=None, n_seen=2, n_held_out=1)
    assert {p.kind for p in plan.prompts} == {"no_trigger", "held_out"}
    assert all(parse_caption(p.text).style == "filled" for p in plan.prompts)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weights": (0.5, 1.0)}, "include 0.0"),
        ({"weights": (0.0, 1.0, 1.0)}, "distinct"),
        ({"seeds": (1, 1)}, "seeds repeat"),
        ({"prompts": (PlanPrompt("a", "trigger"), PlanPrompt("a", "held_out"))}, "prompts repeat"),
        ({"prompts": (PlanPrompt("a", "styled"),)}, "unknown prompt kinds"),
        ({"target_style": "dotted"}, "target_style"),
    ],
)
def test_bad_plans_are_rejected(changes, message):
    values = {"prompts": (PlanPrompt("a red circle on a black background", "no_trigger"),), "seeds": (1, 2)}
    with pytest.raises(ValueError, match=message):
        EvaluationPlan(**(values | changes))


def test_fingerprint_changes_with_the_plan():
    assert shapes_plan(n_seeds=2).fingerprint() == shapes_plan(n_seeds=2).fingerprint()
    assert shapes_plan(n_seeds=2).fingerprint() != shapes_plan(n_seeds=3).fingerprint()


def test_model_comparison_needs_two_distinct_models():
    plan = shapes_plan(style=None, n_seen=1, n_held_out=0)
    with pytest.raises(ValueError, match="two or more"):
        ModelComparisonPlan.from_folders({"a": "x"}, plan)
    assert len(ModelComparisonPlan.from_folders({"a": "x", "b": "y"}, plan).models) == 2


@pytest.mark.parametrize(("trigger", "style"), [("sks", "outlined"), ("zwx", "striped"), ("SKS", "outlined")])
def test_the_shapes_plan_judges_the_style_the_dataset_triggers(trigger, style):
    assert shapes_style_for(trigger) == style
    assert shapes_plan(style=shapes_style_for(trigger)).target_style == style


@pytest.mark.parametrize("trigger", [None, "ohwx", "style"])
def test_a_trigger_of_no_shapes_style_is_refused_with_the_fix(trigger):
    with pytest.raises(ValueError, match="plan: validation_prompts"):
        shapes_style_for(trigger)


def test_tuning_seeds_never_report_seeds():
    """Benchmarks/trials (tuning) and reports draw from disjoint seed index ranges (issue 12)."""
    from diffusion_assets.evaluation.plan import tuning_seeds
    from diffusion_assets.seeds import REPORT_SEED_INDICES, TUNING_SEED_INDICES

    assert not set(REPORT_SEED_INDICES) & set(TUNING_SEED_INDICES)
    assert not set(eval_seeds(64)) & set(tuning_seeds(64))
    assert eval_seeds(3) == eval_seeds(5)[:3]
