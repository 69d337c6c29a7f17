"""Member selection as pure functions: captions and triggers, entry globs, deterministic splits."""

from __future__ import annotations

import pytest

from diffusion_assets.datasets.members import (
    DatasetBuildError,
    Member,
    assign_splits,
    entry_pattern,
    filter_entries,
    final_caption,
    split_score,
)
from diffusion_assets.datasets.spec import DatasetSpec
from tests.datasets.helpers import spec_dict


def member(image_id: str = "img", caption: str = "a red circle on a gray background", **kw) -> Member:
    base = dict(
        catalog="c", date="2026-11-28", entry_id="grid[colour=red]", prompt="PROMPT", source_path="x.png"
    )
    return Member(image_id=image_id, source_sha256="0" * 64, caption=caption, **{**base, **kw})


def spec(trigger: dict, template: str | None = None) -> DatasetSpec:
    return DatasetSpec.model_validate(
        spec_dict(trigger=trigger, captions={"source": "captioner", "template": template})
    )


CAPTIONS = [
    # (trigger, template, raw caption, final caption)
    ({"word": "sks", "placement": "suffix"}, None, "a red circle", "a red circle, sks"),
    ({"word": "sks", "placement": "prefix"}, None, "a red circle", "sks, a red circle"),
    ({"word": "sks", "placement": "none"}, None, "a red circle", "a red circle"),
    ({"word": None, "placement": "none"}, None, "a red circle", "a red circle"),
    (
        {"word": "sks", "placement": "suffix", "phrase": "in sks outline style"},
        None,
        "a red circle on a gray background",
        "a red circle on a gray background, in sks outline style",
    ),
    (  # the shapes world's captions already carry the trigger: never added twice
        {"word": "sks", "placement": "suffix", "phrase": "in sks outline style"},
        None,
        "a red circle on a gray background, in sks outline style",
        "a red circle on a gray background, in sks outline style",
    ),
    ({"word": "sks", "placement": "prefix"}, None, "sksx circle", "sks, sksx circle"),  # whole words only
    ({"word": "sks", "placement": "suffix"}, None, "a red circle.  ", "a red circle, sks"),
    (
        {"word": "sks", "placement": "suffix"},
        "a drawing of {caption}",
        "a red circle",
        "a drawing of a red circle, sks",
    ),
    (
        {"word": "sks", "placement": "suffix"},
        "{trigger} style: {caption}",
        "a red circle",
        "sks style: a red circle",
    ),
    ({"word": None, "placement": "none"}, "{prompt} ({entry_id})", "ignored", "PROMPT (grid[colour=red])"),
    ({"word": None, "placement": "none"}, None, "two\n lines ", "two lines"),
]


@pytest.mark.parametrize(("trigger", "template", "raw", "final"), CAPTIONS)
def test_final_caption(trigger, template, raw, final):
    assert final_caption(member(caption=raw), spec(trigger, template)) == final


def test_empty_caption_is_an_error():
    with pytest.raises(DatasetBuildError, match="image img has an empty caption"):
        final_caption(member(caption="  "), spec({"word": None, "placement": "none"}))


@pytest.mark.parametrize(
    ("glob", "entry_id", "matches"),
    [
        ("grid[colour=red]", "grid[colour=red]", True),  # brackets are literal
        ("grid[colour=red]", "gridc", False),
        ("grid[*]", "grid[colour=blue,shape=circle]", True),
        ("grid*", "grid", True),
        ("grid", "grid[colour=red]", False),
        ("bg?", "bg1", True),
    ],
)
def test_entry_globs(glob, entry_id, matches):
    assert bool(entry_pattern(glob).match(entry_id)) is matches


def test_a_glob_that_matches_nothing_is_an_error():
    with pytest.raises(DatasetBuildError, match=r"(?s)'grdi\*' match\(es\) no entry id.*grid\[colour=red\]"):
        filter_entries([member()], ["grid*", "grdi*"])


def test_split_is_stable_when_images_are_added():
    first = assign_splits([member(f"id{i}") for i in range(200)], 0.2, seed=7)
    more = assign_splits([member(f"id{i}") for i in range(400)], 0.2, seed=7)
    before = {m.image_id: m.split for m in first}
    assert all(before[m.image_id] == m.split for m in more if m.image_id in before)
    share = sum(m.split == "validation" for m in more) / len(more)
    assert 0.12 < share < 0.28


def test_split_seed_changes_the_held_out_images():
    a = {
        m.image_id
        for m in assign_splits([member(f"id{i}") for i in range(100)], 0.2, 0)
        if m.split == "validation"
    }
    b = {
        m.image_id
        for m in assign_splits([member(f"id{i}") for i in range(100)], 0.2, 1)
        if m.split == "validation"
    }
    assert a != b


@pytest.mark.parametrize(("n", "fraction"), [(2, 0.01), (3, 0.5), (5, 0.05)])
def test_tiny_datasets_keep_both_splits(n, fraction):
    splits = [m.split for m in assign_splits([member(f"x{i}") for i in range(n)], fraction, 0)]
    assert splits.count("validation") >= 1 and splits.count("train") >= 1


def test_zero_fraction_holds_nothing_out():
    assert {m.split for m in assign_splits([member(f"x{i}") for i in range(5)], 0.0, 0)} == {"train"}


PRIOR_CAPTIONS = [
    # (trigger, template, raw caption, final caption of a prior image)
    ({"word": "sks", "placement": "suffix"}, None, "a filled circle", "a filled circle"),
    ({"word": "sks", "placement": "prefix"}, None, "a filled circle", "a filled circle"),
    (
        {"word": "sks", "placement": "suffix", "phrase": "in sks style"},
        None,
        "a filled circle",
        "a filled circle",
    ),
    (
        {"word": "sks", "placement": "prefix"},
        "a drawing of {caption} {trigger}",
        "a circle",
        "a drawing of a circle",
    ),
]


@pytest.mark.parametrize(("trigger", "template", "raw", "final"), PRIOR_CAPTIONS)
def test_prior_images_never_get_the_trigger(trigger, template, raw, final):
    assert final_caption(member(caption=raw, prior=True), spec(trigger, template)) == final


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5])
def test_a_sole_image_stays_in_train(fraction):
    image_id = next(f"x{i}" for i in range(1000) if split_score(0, f"x{i}") < fraction)
    assert [m.split for m in assign_splits([member(image_id)], fraction, 0)] == ["train"]
