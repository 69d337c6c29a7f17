"""How many tokens a prompt is for a preset's text encoders, and how many of them each one reads.

diffusers cuts every prompt to what its text encoder reads and says so only in a log line inside the
run: the CLIP encoders of SD and SDXL read ``tokenizer.model_max_length`` tokens (77, start and end
included; the project's ``shapes-tiny`` reads 16), and Flux's T5 reads ``max_sequence_length`` (256 for
schnell, 512 for dev; its CLIP encoder only gives the pooled vector and always reads 77, so it is not
checked). See ``encode_prompt`` in diffusers' ``pipeline_stable_diffusion.py``,
``pipeline_stable_diffusion_xl.py`` and ``pipeline_flux.py`` (``truncation=True``).

At validation time the preset's own ``tokenizer.json`` is read with the ``tokenizers`` library (no
torch, no transformers); a folder that has only ``vocab.json`` + ``merges.txt`` (the SD and SDXL hub
repositories) gets the same CLIP tokenizer transformers builds from them (``CLIPTokenizer.__init__`` in
transformers 5). When no tokenizer is on this machine, counts are a lower bound (CLIP's word split + 2,
T5's whitespace words + 1) and the caller says so. At run time, ``pipeline_token_counts`` counts with
the loaded pipeline's tokenizers, for the manifest row.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diffusion_assets.captioning.tokens import CLIP_MAX_TOKENS, clip_word_count
from diffusion_assets.catalog.model_files import model_folder, read_json
from diffusion_assets.models.presets import Preset

_CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)


@dataclass(frozen=True)
class TextEncoder:
    """One text encoder of a preset: its tokenizer folder, how many tokens it reads, and a counter.

    ``count(texts)`` gives each text's token count, start and end tokens included; it is exact when
    ``exact``, else a lower bound and ``note`` says where the tokenizer was looked for.
    """

    preset: str
    component: str
    max_tokens: int
    count: Callable[[list[str]], list[int]]
    exact: bool
    note: str


def text_encoders(preset: Preset) -> list[TextEncoder]:
    """The text encoders whose tokens a prompt of ``preset`` must fit (none for the renderer)."""
    components = {
        "sd": [("tokenizer", None)],
        "sdxl": [("tokenizer", None), ("tokenizer_2", None)],
        "flux": [("tokenizer_2", preset.max_sequence_length or 512)],
    }.get(preset.family, [])
    if not components:
        return []
    found = model_folder(preset)
    return [_encoder(preset, found.folder, found.where(), name, limit) for name, limit in components]


def _encoder(preset: Preset, folder: Path | None, looked: str, component: str, limit: int | None):
    t5 = preset.family == "flux"
    default = limit or CLIP_MAX_TOKENS
    tokenizer = _load(folder / component) if folder is not None else None
    if tokenizer is None:
        where = f"{folder / component}" if folder is not None else looked
        estimate = _t5_word_count if t5 else clip_word_count
        return TextEncoder(
            preset.name,
            component,
            default,
            lambda texts: [estimate(t) for t in texts],
            exact=False,
            note=f"no {component} of {preset.name} on this machine (looked in {where}), so prompt lengths "
            "were checked against a lower bound only",
        )
    config = read_json(folder / component / "tokenizer_config.json") or {}
    own = config.get("model_max_length")
    max_tokens = limit or (own if isinstance(own, int) and 0 < own < 1_000_000 else CLIP_MAX_TOKENS)

    def count(texts: list[str]) -> list[int]:
        return [len(e.ids) for e in tokenizer.encode_batch(texts)]

    return TextEncoder(preset.name, component, max_tokens, count, True, f"counted with {folder / component}")


def _t5_word_count(text: str) -> int:
    """Lower bound of T5's count: SentencePiece gives every whitespace-separated word a piece, plus ``</s>``."""
    return len(text.split()) + 1


def _load(folder: Path):
    """A ``tokenizers.Tokenizer`` for a tokenizer folder, with truncation and padding off; None if absent."""
    stamps = tuple(
        p.stat().st_mtime_ns if p.is_file() else 0 for p in (folder / "tokenizer.json", folder / "vocab.json")
    )
    return _load_cached(folder, stamps)


@functools.lru_cache(maxsize=16)
def _load_cached(folder: Path, _stamps: tuple):
    from tokenizers import Tokenizer  # noqa: PLC0415 - Rust, light; only when a prompt is counted

    if (folder / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    elif (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        tokenizer = _clip_from_vocab(folder)
    else:
        return None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _clip_from_vocab(folder: Path):
    """transformers 5's ``CLIPTokenizer(vocab, merges)`` restated: byte-level BPE with ``</w>`` word ends,
    NFC + whitespace + lowercase normalisation, CLIP's split pattern, start and end tokens around."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors  # noqa: PLC0415
    from tokenizers.models import BPE  # noqa: PLC0415

    vocab = read_json(folder / "vocab.json") or {}
    lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
    config = read_json(folder / "tokenizer_config.json") or {}
    bos = _token_text(config.get("bos_token"), "<|startoftext|>")
    eos = _token_text(config.get("eos_token"), "<|endoftext|>")
    unk = _token_text(config.get("unk_token"), "<|endoftext|>")
    tokenizer = Tokenizer(
        BPE(
            vocab=vocab,
            merges=[m for m in merges if len(m) == 2],
            dropout=None,
            continuing_subword_prefix="",
            end_of_word_suffix="</w>",
            fuse_unk=False,
            unk_token=unk,
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.post_processor = processors.RobertaProcessing(
        (eos, vocab.get(eos, 0)), (bos, vocab.get(bos, 0)), trim_offsets=False, add_prefix_space=False
    )
    return tokenizer


def _token_text(value, default: str) -> str:
    if isinstance(value, dict):  # an AddedToken saved as {"content": ...}
        value = value.get("content")
    return value if isinstance(value, str) else default


def pipeline_token_counts(pipe, preset: Preset, prompt: str, negative_prompt: str) -> dict:
    """The manifest's token columns for one image, counted with the loaded pipeline's own tokenizers:
    ``prompt_tokens`` and ``negative_prompt_tokens`` (the most over the encoders checked, start and end
    included), ``max_prompt_tokens`` (the least they read) and ``prompt_truncated``; all None for a
    pipeline without a text encoder."""
    names = {"sd": ["tokenizer"], "sdxl": ["tokenizer", "tokenizer_2"], "flux": ["tokenizer_2"]}
    tokenizers = [getattr(pipe, n, None) for n in names.get(preset.family, [])]
    tokenizers = [t for t in tokenizers if t is not None]
    if not tokenizers:
        return dict.fromkeys(
            ("prompt_tokens", "negative_prompt_tokens", "max_prompt_tokens", "prompt_truncated")
        )

    def count(text: str) -> int:
        return max(
            len(t(text, truncation=False, add_special_tokens=True, verbose=False)["input_ids"])
            for t in tokenizers
        )

    reads = (
        preset.max_sequence_length or 512
        if preset.family == "flux"
        else min(int(t.model_max_length) for t in tokenizers)
    )
    tokens = count(prompt)
    negative = count(negative_prompt) if negative_prompt else 0
    return {
        "prompt_tokens": tokens,
        "negative_prompt_tokens": negative,
        "max_prompt_tokens": reads,
        "prompt_truncated": max(tokens, negative) > reads,
    }


def length_problems(encoders: list[TextEncoder], pairs: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """``(field, message)`` for an entry whose longest prompt or negative prompt has more tokens than a
    text encoder reads; ``pairs`` are the entry's ``(expanded id, prompt, negative prompt)``. Every
    distinct text is counted once, with each encoder's own tokenizer."""
    problems: dict[str, str] = {}  # one per field: SDXL's two CLIP encoders read the same 77
    for encoder in encoders:
        for field, column in (("prompt", 1), ("negative_prompt", 2)):
            if field in problems:
                continue
            distinct = list(dict.fromkeys(p[column] for p in pairs if p[column]))
            if not distinct:
                continue
            counts = dict(zip(distinct, encoder.count(distinct), strict=True))
            eid, text = max(((p[0], p[column]) for p in pairs if p[column]), key=lambda p: counts[p[1]])
            if counts[text] <= encoder.max_tokens:
                continue
            bound = "" if encoder.exact else "at least "
            where = f" (longest: {eid})" if len(pairs) > 1 else ""
            problems[field] = (
                f"{field.replace('_', ' ')} is {bound}{counts[text]:,} tokens for {encoder.preset}'s "
                f"{encoder.component}{where}, but its text encoder reads {encoder.max_tokens} (start and end "
                "included): the rest would be dropped"
            )
    return list(problems.items())
