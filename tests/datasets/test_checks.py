"""The dataset's caption check as a plain function: trigger on training images, none on prior images."""

from __future__ import annotations

import pytest

from diffusion_assets.datasets.checks import dataset_caption_report
from diffusion_assets.datasets.members import Member


def member(image_id: str, caption: str, prior: bool = False) -> Member:
    return Member(image_id, "c", "2026-11-28", "e", "p", "x.png", "0" * 64, caption=caption, prior=prior)


@pytest.mark.parametrize(
    ("members", "failing", "check"),
    [
        ([member("a", "a circle, sks"), member("p", "a filled circle", prior=True)], [], None),
        ([member("a", "a circle"), member("p", "a filled circle", prior=True)], ["a"], "missing_trigger"),
        (
            [member("a", "a circle, sks"), member("p", "a circle, SKS", prior=True)],
            ["p"],
            "prior_has_trigger",
        ),
        ([member("p", "a circle, sksx", prior=True)], [], None),  # whole words only
    ],
    ids=["clean", "training image without trigger", "prior image with trigger", "prior near-miss"],
)
def test_trigger_check_covers_training_and_prior_images(members, failing, check):
    report = dataset_caption_report(members, "sks")
    assert report.failing_ids == failing
    assert [i.check for i in report.issues] == ([check] if check else [])
    assert report.n_rows == len(members)


def test_no_trigger_word_checks_no_trigger():
    report = dataset_caption_report([member("a", "a circle"), member("p", "sks", prior=True)], None)
    assert report.passed
