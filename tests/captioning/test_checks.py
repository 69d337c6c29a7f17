"""Caption checks catch planted bad captions and pass good ones."""

from __future__ import annotations

import pytest

from diffusion_assets.captioning.checks import (
    check_captions,
    check_empty,
    check_length,
    check_repeats,
    check_trigger,
)
from diffusion_assets.captioning.tokens import TokenCounter, clip_word_count, token_counter
from diffusion_assets.models.tiny_tokenizers import build_clip_tokenizer

LONG = " ".join(["a red cat on a mat"] * 14)  # 84 words, no word twice in a row
GOOD = "a red circle on a gray background, in sks outline style"


@pytest.fixture(scope="module")
def clip_counter() -> TokenCounter:
    return token_counter(build_clip_tokenizer())


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("", {"empty", "missing_trigger"}),
        (None, {"empty", "missing_trigger"}),
        (float("nan"), {"empty", "missing_trigger"}),
        ("  , . ", {"empty", "missing_trigger"}),
        ("a bald bald bald head, sks", {"repeated_token"}),
        ("a Bald bald, BALD head, sks", {"repeated_token"}),
        (LONG + " sks", {"too_long"}),
        ("a photo of a dog", {"missing_trigger"}),
        ("she asks for a dog", {"missing_trigger"}),  # "sks" inside a word does not count
        (GOOD, set()),
        ("SKS style, a very very good dog", set()),  # two in a row is language, three is a loop
        ("a cat, sks", set()),
    ],
)
def test_each_planted_problem_is_caught_and_good_captions_pass(caption, expected, clip_counter):
    report = check_captions([("img-1", caption)], trigger="sks", counter=clip_counter)
    assert {issue.check for issue in report.issues} == expected
    assert report.failing_ids == (["img-1"] if expected else [])
    assert report.passed == (not expected)


def test_report_counts_issues_per_check_and_keeps_row_ids(clip_counter):
    rows = [("a", GOOD), ("b", ""), ("c", "x x x"), ("d", "no trigger here")]
    report = check_captions(rows, trigger="sks", counter=clip_counter)
    assert report.counts == {"empty": 1, "repeated_token": 1, "missing_trigger": 3}
    assert report.failing_ids == ["b", "c", "d"] and report.n_rows == 4


@pytest.mark.parametrize(
    ("trigger", "caption", "missing"),
    [
        ("in sks outline style", "a red circle, in  sks outline style", False),
        ("in sks outline style", "a red circle, in sks style", True),
        ("ohwx", "OHWX man", False),
    ],
)
def test_trigger_phrases_match_whole_words_case_insensitively(trigger, caption, missing):
    assert bool(check_trigger([("i", caption)], trigger)) == missing


def test_optional_checks_are_skipped_without_their_settings():
    report = check_captions([("i", LONG)])
    assert report.passed and report.token_note is None


def test_length_uses_the_tokenizer_limit_when_it_is_smaller():
    from diffusion_assets.shapes.tokenizer import build_tokenizer

    counter = token_counter(build_tokenizer())  # the shapes-tiny text encoder reads 16 positions
    assert counter.limit == 16 and counter.exact
    caption = "a red circle on a gray background, in sks outline style"
    assert not check_length([("i", caption)], counter)
    assert check_length([("i", caption + " and a blue square too")], counter)


def test_a_clip_tokenizer_in_the_mirror_is_found(tmp_path):
    build_clip_tokenizer().save_pretrained(tmp_path / "stable-diffusion-v1-5/stable-diffusion-v1-5/tokenizer")
    counter = token_counter(models_dir=tmp_path)
    assert counter.exact and counter.limit == 77
    assert counter.name == "stable-diffusion-v1-5/stable-diffusion-v1-5/tokenizer"


def test_without_a_tokenizer_the_count_is_a_labelled_lower_bound(tmp_path, monkeypatch):
    import diffusion_assets.captioning.tokens as tokens

    monkeypatch.setattr(tokens, "_from_hf_cache", lambda hub_id: None)
    counter = token_counter(models_dir=tmp_path)
    assert not counter.exact and counter.limit == 77
    assert "lower bound" in counter.note and "hf download openai/clip-vit-large-patch14" in counter.note
    issue = check_length([("i", LONG)], counter)[0]
    assert issue.reason.startswith("at least 86 tokens > 77")


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 2), ("a red cat", 5), ("a cat's toy, 1990!", 2 + 10), ("photorealistic", 3)],
)
def test_clip_word_count_splits_like_clips_pre_tokenizer(text, count):
    assert clip_word_count(text) == count


def test_the_clip_estimate_never_exceeds_the_real_tokenizer(clip_counter):
    for text in [GOOD, LONG, "a cat's toy, 1990!", "photorealistic bokeh, 8k uhd"]:
        assert clip_word_count(text) <= clip_counter.count(text)


def test_repeats_need_three_in_a_row():
    assert check_repeats([("i", "a b a b a b")]) == []
    assert check_repeats([("i", "go go")], min_run=2)[0].reason.startswith("'go' repeated 2+")


def test_empty_reason_distinguishes_missing_from_punctuation():
    assert check_empty([("i", None)])[0].reason == "caption is missing"
    assert "no words" in check_empty([("i", " ; ")])[0].reason
