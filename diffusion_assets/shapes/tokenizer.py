"""A CLIP tokenizer for the shapes world, trained offline on the world's captions.

The BPE merges are learned here with the original algorithm (Sennrich et al. 2016), on words split by
CLIP's own normalizer and byte-level pre-tokenizer, then handed to transformers' ``CLIPTokenizer`` as
``vocab`` + ``merges`` (the transformers 5 way; it saves ``tokenizer.json`` and
``tokenizer_config.json`` only). Every word of the world becomes one token, and any other text still
encodes through the byte-level alphabet. Ties between equally frequent pairs are broken by the pair's
text: the ``tokenizers`` BpeTrainer breaks them by hash order, which gave different token ids in
every process and so different trained weights for the same seed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tokenizers import pre_tokenizers
from transformers import CLIPTokenizer

from diffusion_assets.shapes.captions import caption
from diffusion_assets.shapes.world import STYLES, all_combos

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
BOS_ID, EOS_ID = 0, 1
"""Token ids the text config must match (``bos_token_id``, ``eos_token_id`` = ``pad_token_id``)."""
MAX_LENGTH = 16
"""``model_max_length`` = the text model's ``max_position_embeddings``; the longest caption is 14 tokens."""
SUFFIX = "</w>"
# Extra words so near-miss prompts ("an", "grey", "image of") encode to whole tokens.
_EXTRA_TEXT = ["an grey image photo of with and the shape color colour background style"]


def world_captions() -> list[str]:
    """Every caption of the world, all styles, in a fixed order."""
    return [caption(attrs) for attrs in all_combos(STYLES)]


def _merge(parts: list[str], pair: tuple[str, str]) -> list[str]:
    out, i = [], 0
    while i < len(parts):
        if i + 1 < len(parts) and (parts[i], parts[i + 1]) == pair:
            out.append(parts[i] + parts[i + 1])
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return out


def learn_merges(word_counts: Counter[str]) -> list[tuple[str, str]]:
    """BPE merges until every word is one symbol; the most frequent pair first, ties by text."""
    splits = {word: list(word[:-1]) + [word[-1] + SUFFIX] for word in word_counts}
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, parts in splits.items():
            for pair in zip(parts, parts[1:], strict=False):
                pairs[pair] += word_counts[word]
        if not pairs:
            return merges
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        splits = {word: _merge(parts, best) for word, parts in splits.items()}


def build_tokenizer(captions: list[str] | None = None, max_length: int = MAX_LENGTH) -> CLIPTokenizer:
    """Learn a BPE on ``captions`` (default: the whole world) and wrap it as a ``CLIPTokenizer``."""
    # 1. split text exactly as CLIPTokenizer will at inference (lower-case, words, byte-level symbols)
    template = CLIPTokenizer().backend_tokenizer
    words: Counter[str] = Counter()
    for text in (captions or world_captions()) + _EXTRA_TEXT:
        normalized = template.normalizer.normalize_str(text)
        words.update(word for word, _ in template.pre_tokenizer.pre_tokenize_str(normalized))
    # 2. vocabulary: specials, every byte symbol alone and word-final, then one entry per merge
    merges = learn_merges(words)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    symbols = [BOS, EOS] + alphabet + [s + SUFFIX for s in alphabet] + ["".join(pair) for pair in merges]
    vocab = {symbol: i for i, symbol in enumerate(dict.fromkeys(symbols))}
    # 3. wrap; pad with EOS as CLIP does
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)
    if (tokenizer.bos_token_id, tokenizer.eos_token_id) != (BOS_ID, EOS_ID):
        raise RuntimeError(f"special token ids moved: {tokenizer.bos_token_id}, {tokenizer.eos_token_id}")
    return tokenizer


def save_tokenizer(out_dir: str | Path, captions: list[str] | None = None) -> Path:
    """Build the tokenizer and ``save_pretrained`` it into ``out_dir``; returns the folder."""
    out = Path(out_dir)
    build_tokenizer(captions).save_pretrained(out)
    return out
