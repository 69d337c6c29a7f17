"""Count a caption's tokens the way the text encoder that will read it does.

Stable Diffusion's CLIP text encoders read 77 positions, start and end tokens included; the rest of a
longer caption is cut off silently. ``token_counter`` counts with a given tokenizer, else with the first
CLIP tokenizer found locally (the offline mirror, then the Hugging Face cache). With none available it
falls back to CLIP's pre-tokenizer split plus the two special tokens: a lower bound, since CLIP's BPE
can only split a word into more tokens, never fewer. The counter says which of these it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLIP_MAX_TOKENS = 77
"""Positions of every Stable Diffusion / SDXL CLIP text encoder, start and end tokens included."""

CLIP_TOKENIZER_CANDIDATES: tuple[str, ...] = (
    "openai/clip-vit-large-patch14",
    "stable-diffusion-v1-5/stable-diffusion-v1-5/tokenizer",
    "stabilityai/stable-diffusion-xl-base-1.0/tokenizer",
    "openai/clip-vit-base-patch32",
)
"""Where a CLIP tokenizer is looked for under ``models_dir``, in order; the first (a hub id) also in the
Hugging Face cache."""

# CLIP's pre-tokenizer pattern (openai/CLIP simple_tokenizer.py), with \p{L} / \p{N} in ``re`` terms
_CLIP_WORDS = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)


@dataclass(frozen=True)
class TokenCounter:
    """``count(text)`` = tokens including start and end; ``exact`` is False for the fallback estimate."""

    name: str
    count: Callable[[str], int]
    limit: int
    exact: bool
    note: str


def clip_word_count(text: str) -> int:
    """Lower bound of CLIP's token count: pre-tokenizer pieces plus the start and end tokens."""
    return len(_CLIP_WORDS.findall(text.lower())) + 2


def token_counter(
    tokenizer: object | str | os.PathLike | None = None,
    *,
    models_dir: Path | None = None,
    limit: int | None = None,
) -> TokenCounter:
    """A counter from ``tokenizer`` (an object with ``__call__`` or a folder), else a local CLIP one.

    ``limit`` defaults to 77, or to the tokenizer's ``model_max_length`` when that is smaller (e.g. the
    shapes-tiny tokenizer's 16): captions longer than what the encoder reads lose their end.
    """
    # 1. an explicit tokenizer: an object, or a folder to load it from (a wrong path is an error)
    if isinstance(tokenizer, str | os.PathLike):
        return _from_tokenizer(_load_tokenizer(Path(tokenizer)), str(tokenizer), limit)
    if tokenizer is not None:
        return _from_tokenizer(
            tokenizer, getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__, limit
        )
    # 2. a CLIP tokenizer on this machine
    for candidate in CLIP_TOKENIZER_CANDIDATES:
        folder = models_dir / candidate if models_dir is not None else None
        if folder is not None and (folder / "tokenizer_config.json").is_file():
            return _from_tokenizer(_load_tokenizer(folder), candidate, limit)
    cached = _from_hf_cache(CLIP_TOKENIZER_CANDIDATES[0])
    if cached is not None:
        return _from_tokenizer(cached, CLIP_TOKENIZER_CANDIDATES[0], limit)
    # 3. the estimate, saying so
    looked = f"{models_dir}/<{' | '.join(CLIP_TOKENIZER_CANDIDATES)}>" if models_dir else "no models_dir"
    return TokenCounter(
        name="clip-words (estimate)",
        count=clip_word_count,
        limit=limit or CLIP_MAX_TOKENS,
        exact=False,
        note=(
            "No CLIP tokenizer found locally, so token counts are a lower bound (CLIP's word split + 2); "
            f"looked in {looked} and the Hugging Face cache. For exact counts fetch one: "
            f"hf download {CLIP_TOKENIZER_CANDIDATES[0]} --include 'tokenizer*' 'vocab.json' 'merges.txt' "
            f"'special_tokens_map.json' --local-dir <models_dir>/{CLIP_TOKENIZER_CANDIDATES[0]}"
        ),
    )


def _from_tokenizer(tokenizer, name: str, limit: int | None) -> TokenCounter:
    own = getattr(tokenizer, "model_max_length", None)
    default = min(CLIP_MAX_TOKENS, own) if isinstance(own, int) and own > 0 else CLIP_MAX_TOKENS
    limit = limit or default

    def count(text: str) -> int:
        return len(tokenizer(text, truncation=False, add_special_tokens=True, verbose=False)["input_ids"])

    return TokenCounter(
        name=name, count=count, limit=limit, exact=True, note=f"counted with tokenizer {name}"
    )


def _load_tokenizer(folder: Path):
    from transformers import AutoTokenizer  # noqa: PLC0415

    if not folder.exists():
        raise FileNotFoundError(f"tokenizer folder {folder} does not exist")
    return AutoTokenizer.from_pretrained(folder)


def _from_hf_cache(hub_id: str):
    try:
        from transformers import AutoTokenizer  # noqa: PLC0415

        return AutoTokenizer.from_pretrained(hub_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached is the normal case; the caller falls back and says so
        return None
