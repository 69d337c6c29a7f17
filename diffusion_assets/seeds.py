"""Seed derivation: the one function that decides every image's seed.

``derive_seed`` hashes the catalog's base seed, the entry id, the sample index and the partition
date with SHA-256 and keeps 63 bits. Hashing (rather than ``base + index``) means that adding or
reordering entries never shifts another entry's seeds, and neighbouring samples get unrelated
noise. The result is used with one CPU ``torch.Generator`` per image (see ``cpu_generator``), as
the diffusers reproducibility guide advises, so a seed means the same initial noise on any
machine and at any position in a batch.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads only where noise is drawn: validating a catalog needs no torch
    import torch

SEED_DERIVATION_VERSION = 1
"""Bumped if ``derive_seed`` ever changes; written to every manifest row."""


def derive_seed(base_seed: int, entry_id: str, sample_index: int, date: str | None = None) -> int:
    """Return the seed of sample ``sample_index`` of catalog entry ``entry_id``.

    Args:
        base_seed: the catalog's (or entry's) ``seed``.
        entry_id: the entry's stable id (after template expansion, e.g. ``fruit[apple]``).
        sample_index: 0-based index among the entry's ``images_per_prompt``.
        date: partition date ``YYYY-MM-DD``; ``None`` (catalogs with ``vary_seed_by_date: false``)
            gives the same seeds every night.

    Returns:
        An integer in ``[0, 2**63)``, a valid ``torch.Generator.manual_seed`` argument.
    """
    if sample_index < 0:
        raise ValueError(f"sample_index must be >= 0, got {sample_index}")
    key = f"v{SEED_DERIVATION_VERSION}|{int(base_seed)}|{entry_id}|{int(sample_index)}|{date or ''}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


REPORT_SEED_INDICES = range(0, 1_000_000)
"""Sample indices of the ``"evaluation"`` seed stream that reports (the evaluation asset) use."""

TUNING_SEED_INDICES = range(1_000_000, 2_000_000)
"""Sample indices that tuning uses (``benchmarks/``, training trials): disjoint from the report
indices, so no figure a report prints was measured on seeds a recipe was tuned on."""

SEED_PURPOSES = {"report": REPORT_SEED_INDICES, "tuning": TUNING_SEED_INDICES}


def purpose_seeds(purpose: str, n: int, base_seed: int) -> tuple[int, ...]:
    """The first ``n`` seeds of ``purpose`` (``"report"`` or ``"tuning"``) for ``base_seed``.

    Seed ``i`` is ``derive_seed(base_seed, "evaluation", SEED_PURPOSES[purpose][i])``, so the
    report seeds are unchanged from earlier versions and the two purposes never share a seed index.

    Raises:
        ValueError: unknown purpose, or ``n`` outside ``[0, len(range)]``.
    """
    if purpose not in SEED_PURPOSES:
        raise ValueError(f"seed purpose must be one of {sorted(SEED_PURPOSES)}, got {purpose!r}")
    indices = SEED_PURPOSES[purpose]
    if not 0 <= n <= len(indices):
        raise ValueError(f"need 0 <= n <= {len(indices)} seeds for {purpose!r}, got {n}")
    return tuple(derive_seed(base_seed, "evaluation", i) for i in indices[:n])


def cpu_generator(seed: int) -> torch.Generator:
    """A fresh CPU generator for one image: noise never depends on the device or batch-mates."""
    import torch  # noqa: PLC0415

    return torch.Generator(device="cpu").manual_seed(int(seed))
