"""Captions parse back to exactly the attributes they were made from."""

import pytest

from diffusion_assets.shapes.captions import ShapeAttrs, caption, parse_caption
from diffusion_assets.shapes.world import STYLES, all_combos


@pytest.mark.parametrize("attrs", all_combos(STYLES), ids=lambda a: caption(a).replace(" ", "_"))
def test_round_trip(attrs):
    assert parse_caption(caption(attrs)) == attrs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a red circle on a gray background", ShapeAttrs("red", "circle", "gray")),
        ("A Red Circle on a Grey background.", ShapeAttrs("red", "circle", "gray")),
        ("  a blue square  on an white background ", ShapeAttrs("blue", "square", "white")),
        (
            "a cyan triangle on a black background, in sks outline style",
            ShapeAttrs("cyan", "triangle", "black", "outlined"),
        ),
        (
            "a cyan triangle on a black background,in zwx stripe style",
            ShapeAttrs("cyan", "triangle", "black", "striped"),
        ),
    ],
)
def test_parse_tolerates_case_articles_and_spacing(text, expected):
    assert parse_caption(text) == expected


def test_styled_caption_carries_its_trigger_word():
    assert caption(ShapeAttrs("red", "circle", "gray", "outlined")).endswith(", in sks outline style")


@pytest.mark.parametrize(
    "text",
    ["a red circle", "red circle on gray background", "a red circle on a gray background, in foo bar style"],
)
def test_parse_rejects_other_text(text):
    with pytest.raises(ValueError, match="caption|style"):
        parse_caption(text)
