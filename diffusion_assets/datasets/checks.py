"""The ``captions_have_trigger`` check of a built dataset, as a plain function over its members."""

from __future__ import annotations

from collections.abc import Sequence

from diffusion_assets.captioning.checks import CaptionIssue, CheckReport, check_captions, check_trigger
from diffusion_assets.datasets.members import Member


def dataset_caption_report(members: Sequence[Member], trigger: str | None) -> CheckReport:
    """``check_captions`` over the training images, plus a ``prior_has_trigger`` issue for each prior image
    whose caption contains the trigger (prior preservation needs images that do not name the style).

    The trigger is matched as ``check_trigger`` matches it: whole words, case-insensitive.
    """
    styled = [(m.image_id, m.caption) for m in members if not m.prior]
    priors = [(m.image_id, m.caption) for m in members if m.prior]
    report = check_captions(styled, trigger=trigger)
    issues = list(report.issues)
    if trigger is not None and priors:
        lacking = {issue.image_id for issue in check_trigger(priors, trigger)}
        issues += [
            CaptionIssue(
                image_id,
                "prior_has_trigger",
                f"prior image's caption contains the trigger {trigger!r}; prior images must not name the "
                "style: edit its caption, or move its catalog out of the prior sources",
                caption,
            )
            for image_id, caption in priors
            if image_id not in lacking
        ]
    counts = {name: sum(i.check == name for i in issues) for name in dict.fromkeys(i.check for i in issues)}
    return CheckReport(issues=issues, n_rows=len(members), token_note=report.token_note, counts=counts)
