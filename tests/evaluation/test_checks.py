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
