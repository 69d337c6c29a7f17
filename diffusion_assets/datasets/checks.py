"""The ``captions_have_trigger`` check of a built dataset, as a plain function over its members."""

from __future__ import annotations

from collections.abc import Sequence

from diffusion_assets.captioning.checks import CaptionIssue, CheckReport, check_captions, check_trigger
from diffusion_assets.datasets.members import DatasetBuildError, Member

TRIGGER_CHECKS = ("missing_trigger", "prior_has_trigger")


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


def refuse_untriggered(spec_file: str, members: Sequence[Member], trigger: str | None) -> None:
    """Raise before a dataset is written when a caption lacks the trigger or a prior caption holds it:
    an adapter trained on it would not tie its style to the trigger word.

    Raises:
        DatasetBuildError: naming the spec file, the trigger, how many captions and a few of them.
    """
    report = dataset_caption_report(members, trigger)
    wrong = [issue for issue in report.issues if issue.check in TRIGGER_CHECKS]
    if not wrong:
        return
    examples = "; ".join(f"{i.image_id}: {i.caption!r} ({i.check})" for i in wrong[:3])
    raise DatasetBuildError(
        f"{spec_file}: {len(wrong)} caption(s) break the trigger rule for {trigger!r} (e.g. {examples}); nothing "
        "was written\n    hint: add {trigger} to captions.template or set trigger.placement: prefix or suffix; "
        "prior images' captions must not contain it."
    )
