"""Throttled progress lines: first and last always, otherwise at most one per interval."""

from __future__ import annotations

from diffusion_assets.progress import ThrottledProgress


def test_logs_first_last_and_at_most_once_per_interval():
    now = [0.0]
    lines: list[tuple[int, int]] = []
    progress = ThrottledProgress(lambda d, t: lines.append((d, t)), every_s=10.0, clock=lambda: now[0])
    for done in range(1, 31):  # one batch every 3 s
        now[0] += 3.0
        progress(done, 30)
    # batch k ends at 3k s: batch 1 (3 s), then each first batch >= 10 s after the previous line
    # (15 s, 27 s, ...), and batch 30 however close it is to batch 29
    assert [d for d, _ in lines] == [1, 5, 9, 13, 17, 21, 25, 29, 30]
    assert {t for _, t in lines} == {30}


def test_a_fast_loop_logs_only_its_ends():
    lines = []
    progress = ThrottledProgress(lambda d, t: lines.append(d), every_s=10.0, clock=lambda: 0.0)
    for done in range(1, 101):
        progress(done, 100)
    assert lines == [1, 100]
