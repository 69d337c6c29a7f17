"""Caption quality checks: pure functions from ``(image_id, caption)`` rows to the rows that fail, and why.

Each check returns ``CaptionIssue``s; ``check_captions`` runs them all. A row may fail several checks.
- ``empty``: no caption, or only whitespace and punctuation;
- ``repeated_token``: one word 3+ times in a row (``"a bald bald bald head"``), a classic greedy-decoding
  loop of captioning models;
- ``too_long``: more tokens than the text encoder reads (77 for CLIP), so its end would be cut off;
- ``missing_trigger``: a LoRA dataset's trigger word is not in the caption.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from diffusion_assets.captioning.tokens import TokenCounter

CaptionRow = tuple[str, object]
"""``(image_id, caption)``; a caption may be None or NaN when a captioner failed to write one."""

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class CaptionIssue:
    """One failing row: which image, which check, and a reason a person can act on."""

    image_id: str
    check: str
    reason: str
    caption: str


@dataclass(frozen=True)
class CheckReport:
    """Every issue found, plus how tokens were counted (exact, or an estimate and why)."""

    issues: list[CaptionIssue]
    n_rows: int
    token_note: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def failing_ids(self) -> list[str]:
        """Image ids with at least one issue, in first-seen order."""
        return list(dict.fromkeys(issue.image_id for issue in self.issues))

    @property
    def passed(self) -> bool:
        return not self.issues


def _text(caption: object) -> str:
    if caption is None or (isinstance(caption, float) and math.isnan(caption)):
        return ""
    return str(caption)


def check_empty(rows: Iterable[CaptionRow]) -> list[CaptionIssue]:
    """Captions that are missing, blank, or hold no word at all (e.g. ``" , ."``)."""
    issues = []
    for image_id, caption in rows:
        text = _text(caption)
        if not _WORD.search(text):
            reason = (
                "caption is missing" if caption is None or not text else f"caption has no words: {text!r}"
            )
            issues.append(CaptionIssue(str(image_id), "empty", reason, text))
    return issues


def check_repeats(rows: Iterable[CaptionRow], min_run: int = 3) -> list[CaptionIssue]:
    """Captions with one word repeated ``min_run``+ times in a row (case-insensitive, punctuation ignored)."""
    issues = []
    for image_id, caption in rows:
        text = _text(caption)
        words = [w.lower() for w in _WORD.findall(text)]
        run = 1
        for i in range(1, len(words)):
            run = run + 1 if words[i] == words[i - 1] else 1
            if run == min_run:
                issues.append(
                    CaptionIssue(
                        str(image_id),
                        "repeated_token",
                        f"{words[i]!r} repeated {min_run}+ times in a row (a decoding loop); re-caption "
                        "or edit it",
                        text,
                    )
                )
                break
    return issues


def check_length(rows: Iterable[CaptionRow], counter: TokenCounter) -> list[CaptionIssue]:
    """Captions with more tokens than ``counter.limit``; the text encoder would drop the rest."""
    issues = []
    for image_id, caption in rows:
        text = _text(caption)
        n = counter.count(text)
        if n > counter.limit:
            bound = "" if counter.exact else "at least "
            issues.append(
                CaptionIssue(
                    str(image_id),
                    "too_long",
                    f"{bound}{n} tokens > {counter.limit} ({counter.name}): the text encoder truncates "
                    "the end; shorten it or lower the captioner's max_new_tokens",
                    text,
                )
            )
    return issues


def check_trigger(
    rows: Iterable[CaptionRow], trigger: str, case_sensitive: bool = False
) -> list[CaptionIssue]:
    """Captions without ``trigger`` as a whole word or phrase (``"sks"`` is not found in ``"asks"``)."""
    words = [re.escape(w) for w in trigger.split()]
    if not words:
        raise ValueError("trigger must contain a word; pass None when the dataset needs none")
    pattern = re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", 0 if case_sensitive else re.IGNORECASE)
    issues = []
    for image_id, caption in rows:
        text = _text(caption)
        if not pattern.search(text):
            issues.append(
                CaptionIssue(
                    str(image_id),
                    "missing_trigger",
                    f"trigger {trigger!r} is missing; the LoRA learns its style only from captions that "
                    "contain it",
                    text,
                )
            )
    return issues


def check_captions(
    rows: Sequence[CaptionRow],
    *,
    trigger: str | None = None,
    counter: TokenCounter | None = None,
    min_repeat_run: int = 3,
) -> CheckReport:
    """Run every check; ``counter`` None skips the length check, ``trigger`` None the trigger check."""
    rows = list(rows)
    issues = check_empty(rows) + check_repeats(rows, min_repeat_run)
    if counter is not None:
        issues += check_length(rows, counter)
    if trigger is not None:
        issues += check_trigger(rows, trigger)
    counts = {name: sum(i.check == name for i in issues) for name in dict.fromkeys(i.check for i in issues)}
    return CheckReport(
        issues=issues, n_rows=len(rows), token_note=counter.note if counter else None, counts=counts
    )
