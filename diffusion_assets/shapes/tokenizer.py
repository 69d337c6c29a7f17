"""A CLIP tokenizer for the shapes world, trained offline on the world's captions.

The BPE is trained with the ``tokenizers`` library using CLIP's own normalizer and byte-level
pre-tokenizer, then handed to transformers' ``CLIPTokenizer`` as ``vocab`` + ``merges`` (the
transformers 5 way; it saves ``tokenizer.json`` and ``tokenizer_config.json`` only). Every word of
the world becomes one token, and any other text still encodes through the byte-level alphabet.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import CLIPTokenizer

from diffusion_assets.shapes.captions import caption
from diffusion_assets.shapes.world import STYLES, all_combos

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
BOS_ID, EOS_ID = 0, 1
"""Token ids the text config must match (``bos_token_id``, ``eos_token_id`` = ``pad_token_id``)."""
MAX_LENGTH = 16
"""``model_max_length`` = the text model's ``max_position_embeddings``; the longest caption is 13 tokens."""
# Extra words so near-miss prompts ("an", "grey", "image of") encode to whole tokens, and every printable
# character as a word of its own, so that out-of-world text ends words without falling back to <unk>.
_EXTRA_TEXT = [
    "an grey image photo of with and the shape color colour background style",
    " ".join(string.ascii_lowercase + string.digits + string.punctuation),
]


def world_captions() -> list[str]:
    """Every caption of the world, all styles, in a fixed order."""
    return [caption(attrs) for attrs in all_combos(STYLES)]


def build_tokenizer(captions: list[str] | None = None, max_length: int = MAX_LENGTH) -> CLIPTokenizer:
    """Train a BPE on ``captions`` (default: the whole world) and wrap it as a ``CLIPTokenizer``."""
    corpus = (captions or world_captions()) + _EXTRA_TEXT
    # 1. borrow CLIP's normalizer and pre-tokenizer so training splits text exactly as inference will
    template = CLIPTokenizer().backend_tokenizer
    bpe = Tokenizer(models.BPE(unk_token=EOS, end_of_word_suffix="</w>"))
    bpe.normalizer = template.normalizer
    bpe.pre_tokenizer = template.pre_tokenizer
    # 2. train until every word is one token (the vocabulary cap is never reached)
    trainer = trainers.BpeTrainer(
        vocab_size=2000,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    # 3. wrap; pad with EOS as CLIP does
    tokenizer = CLIPTokenizer(vocab=model["vocab"], merges=merges, model_max_length=max_length)
    if (tokenizer.bos_token_id, tokenizer.eos_token_id) != (BOS_ID, EOS_ID):
        raise RuntimeError(f"special token ids moved: {tokenizer.bos_token_id}, {tokenizer.eos_token_id}")
    return tokenizer


def save_tokenizer(out_dir: str | Path, captions: list[str] | None = None) -> Path:
    """Build the tokenizer and ``save_pretrained`` it into ``out_dir``; returns the folder."""
    out = Path(out_dir)
    build_tokenizer(captions).save_pretrained(out)
    return out
