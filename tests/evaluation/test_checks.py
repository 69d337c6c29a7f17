"""The blocking check: a no-op adapter fails, a real style gain passes, a CLIP-T drop fails."""

from __future__ import annotations

import pytest

from diffusion_assets.datasets.spec import Evaluation
from diffusion_assets.evaluation.checks import evaluation_passes
from diffusion_assets.evaluation.generate import weight_variants
from diffusion_assets.evaluation.tables import summarize

WEIGHTS = (0.0, 0.5, 1.0)


def fake_rows(style_rate: dict[float, float], clip_t: dict[float, float], n: int = 10) -> list[dict]:
    """``n`` trigger-prompt rows per weight with the given style rate and CLIP-T, plus no-trigger rows."""
    rows = []
    for weight in WEIGHTS:
        for i in range(n):
            for kind in ("trigger", "no_trigger"):
                rows.append(
                    {
                        "model": "tiny",
                        "weight": weight,
                        "prompt_kind": kind,
                        "clip_t": clip_t[weight],
                        "clip_i": None,
                        "adherence_all": True,
                        "style_ok": kind == "trigger" and i < round(style_rate[weight] * n),
                    }
                )
    return rows


def verdict(rows: list[dict], thresholds=None) -> tuple[bool, list[str]]:
    summary = summarize(rows, weight_variants("tiny", WEIGHTS))
    return evaluation_passes(summary, thresholds or Evaluation())


def test_a_no_op_adapter_fails():
    same = {w: 0.2 for w in WEIGHTS}
    passed, reasons = verdict(fake_rows(same, {w: 25.0 for w in WEIGHTS}))
    assert not passed
    assert len(reasons) == 1 and reasons[0].startswith("style rate gain 0.0000 < min_style_gain")


def test_a_real_style_gain_passes():
    passed, reasons = verdict(fake_rows({0.0: 0.1, 0.5: 0.4, 1.0: 0.8}, {0.0: 25.0, 0.5: 25.5, 1.0: 26.0}))
    assert passed and reasons == []


def test_a_style_gain_that_costs_clip_t_fails():
    passed, reasons = verdict(fake_rows({0.0: 0.1, 0.5: 0.4, 1.0: 0.8}, {0.0: 25.0, 0.5: 24.0, 1.0: 20.0}))
    assert not passed
    assert reasons == [reasons[0]] and reasons[0].startswith("CLIP-T gain -0.0500 < min_clip_t_gain -0.0200")


@pytest.mark.parametrize(
    ("thresholds", "passes"),
    [
        ({"min_style_gain": 0.5, "min_clip_t_gain": None}, True),
        ({"min_style_gain": 0.8, "min_clip_t_gain": None}, False),
        ({"min_style_gain": None, "min_clip_t_gain": None}, True),
    ],
)
def test_thresholds_from_a_mapping(thresholds, passes):
    rows = fake_rows({0.0: 0.1, 0.5: 0.4, 1.0: 0.8}, {w: 25.0 for w in WEIGHTS})
    assert verdict(rows, thresholds)[0] is passes


def test_an_unmeasured_criterion_fails():
    rows = [r | {"style_ok": None} for r in fake_rows({w: 0.5 for w in WEIGHTS}, {w: 25.0 for w in WEIGHTS})]
    passed, reasons = verdict(rows)
    assert not passed and "style rate gain not measured" in reasons[0]


def reading(colour="red", shape="circle", background="black", style="filled") -> dict:
    return {"read_colour": colour, "read_shape": shape, "read_background": background, "read_style": style}


NOTHING = {"read_colour": None, "read_shape": None, "read_background": None, "read_style": None}


@pytest.mark.parametrize(
    ("kind", "weight_0", "weight_1", "leaked"),
    [
        # the report's blind spot: an outline adapter that stripes a no-trigger circle leaks
        ("no_trigger", reading(), reading(style="striped"), ["style"]),
        ("no_trigger", reading(), reading(style="outlined"), ["style"]),
        ("no_trigger", reading(), reading(), []),
        ("no_trigger", reading(), reading(background="white"), ["background"]),
        # a trigger prompt asks for the target style, and only for it
        ("trigger", reading(), reading(style="outlined"), []),
        ("trigger", reading(), reading(style="striped"), ["style"]),
        ("held_out", reading(), reading(colour="blue", style="outlined"), ["colour"]),
        # a shape found at one weight and gone at the other changes everything
        ("trigger", reading(), NOTHING, ["colour", "shape", "background", "style"]),
        ("no_trigger", NOTHING, NOTHING, []),
    ],
)
def test_leakage_is_any_change_the_prompt_did_not_ask_for(kind, weight_0, weight_1, leaked):
    from diffusion_assets.evaluation.tables import leaked_attributes

    assert (
        leaked_attributes({**weight_0, "prompt_kind": kind}, {**weight_1, "prompt_kind": kind}, "outlined")
        == leaked
    )


def _leaky_rows(n_leaked: int, n: int = 20) -> list[dict]:
    """No-trigger rows whose weight-1 images differ from weight 0 in ``n_leaked`` of ``n`` seeds."""
    from diffusion_assets.evaluation.tables import mark_leakage

    rows = []
    for weight in WEIGHTS:
        for seed in range(n):
            for kind in ("trigger", "no_trigger"):
                style = "outlined" if kind == "trigger" and weight > 0 else "filled"
                if kind == "no_trigger" and weight == 1.0 and seed < n_leaked:
                    style = "striped"
                rows.append(
                    {
                        "model": "tiny",
                        "prompt": f"{kind} prompt",
                        "seed": seed,
                        "weight": weight,
                        "prompt_kind": kind,
                        "clip_t": 25.0 + weight,
                        "clip_i": None,
                        "adherence_all": True,
                        "style_ok": kind == "trigger" and weight > 0,
                        **reading(style=style),
                    }
                )
    return mark_leakage(rows, "outlined")


def test_leakage_is_counted_in_the_summary_and_fails_the_check_past_its_threshold():
    rows = _leaky_rows(3)
    summary = summarize(rows, weight_variants("tiny", WEIGHTS))
    assert summary["gains"]["leakage"] == pytest.approx(3 / 20)
    assert (
        next(e for e in summary["variants"] if e["weight"] == 1.0)["by_kind"]["no_trigger"]["leaked"]
        == 3 / 20
    )
    assert all(r.get("leaked") is None for r in rows if r["weight"] == 0.0)
    assert {r["leaked_attributes"] for r in rows if r.get("leaked")} == {"style"}
    passed, reasons = evaluation_passes(summary, Evaluation(max_leakage=0.05))
    assert (
        not passed
        and reasons == [reasons[0]]
        and reasons[0].startswith("leakage 0.1500 > max_leakage 0.0500")
    )
    assert evaluation_passes(
        summarize(_leaky_rows(1), weight_variants("tiny", WEIGHTS)), Evaluation(max_leakage=0.05)
    )[0]
    assert evaluation_passes(summary, Evaluation())[0]  # off by default
