"""Offline tokenizers for the tiny random-weight pipelines in `tiny.py`.

Nothing here touches the Hugging Face hub. The CLIP tokenizer is a byte-level BPE whose base vocabulary
holds all 256 byte symbols (with and without the `</w>` end-of-word suffix), so any prompt tokenizes
without unknown tokens; a few hundred merges learned from `PROMPT_WORDS` keep common prompt words short.
The T5 tokenizer is a Unigram model over the same words plus single characters.
"""

import functools
from collections import Counter

from transformers import CLIPTokenizer, T5TokenizerFast

CLIP_MAX_LENGTH = 77
"""Real CLIP text encoders have 77 positions; the tiny ones keep it so truncation paths run as in production."""
T5_MAX_LENGTH = 512
CLIP_VOCAB_SIZE = 1000

PROMPT_WORDS: tuple[str, ...] = tuple(
    """
    a an the of in on at with and or by for from to under over near behind beside inside outside
    photo photograph painting drawing sketch illustration render portrait landscape closeup close up
    picture image art artwork style digital oil watercolor pencil ink anime cartoon realistic
    photorealistic cinematic dramatic soft hard light lighting sunlight shadow shadows night day
    morning evening sunset sunrise dusk dawn golden hour blue hour studio bokeh depth field
    high quality detailed highly sharp focus blurry lowres low resolution masterpiece best worst
    red orange yellow green blue purple pink brown black white gray grey gold silver colorful
    bright dark pale vivid pastel neon
    cat cats dog dogs bird birds fish horse cow sheep fox wolf bear lion tiger rabbit mouse owl
    squirrel burger apple banana cake coffee cup tea bowl fruit flower flowers tree trees forest
    mountain mountains river lake sea ocean beach sky cloud clouds rain snow storm desert field
    city street road house building castle tower bridge car train boat ship plane bicycle
    man woman person people child girl boy face hands eyes hair smiling standing sitting walking
    running eating holding wearing looking flying swimming sleeping playing
    circle square triangle star heart shape shapes background foreground center left right top
    bottom small large big tiny huge old new young wooden metal glass stone paper plastic
    one two three four five many
    """.split()
)


def _bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable unicode character, as GPT-2 and CLIP's byte-level BPE do."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codepoints = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codepoints.append(256 + extra)
            extra += 1
    return {byte: chr(cp) for byte, cp in zip(printable, codepoints, strict=True)}


def _learn_bpe_merges(words: tuple[str, ...], num_merges: int) -> list[tuple[str, str]]:
    """Learn BPE merges deterministically (Sennrich et al. 2016, Alg. 1; ties broken alphabetically).

    The `tokenizers` trainer counts words in a hash map, so its tie-breaking may differ between runs;
    this loop is small enough to run in milliseconds and never does.
    """
    vocab = Counter(tuple(word[:-1]) + (word[-1] + "</w>",) for word in words)
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, count in vocab.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for symbols, count in vocab.items():
            out: list[str] = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] += count
        vocab = merged
    return merges


def build_clip_tokenizer(pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """Build a CLIP byte-level BPE tokenizer of `CLIP_VOCAB_SIZE` tokens with model_max_length 77.

    Like the real checkpoints, SD 1.5 and SDXL's first tokenizer pad with `<|endoftext|>`, while SDXL's
    second tokenizer pads with `"!"` (id 0). The start and end tokens take the last two ids.
    """
    tokens, merges = _clip_tokens_and_merges()
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(
        vocab=vocab, merges=list(merges), pad_token=pad_token, model_max_length=CLIP_MAX_LENGTH
    )


@functools.cache
def _clip_tokens_and_merges() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """CLIP's layout: 256 byte symbols, the same with `</w>`, merged tokens, then start and end tokens."""
    symbols = list(_bytes_to_unicode().values())
    base = symbols + [s + "</w>" for s in symbols]
    merges = _learn_bpe_merges(PROMPT_WORDS, CLIP_VOCAB_SIZE - len(base) - 2)
    tokens = base + ["".join(pair) for pair in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return tuple(dict.fromkeys(tokens)), tuple(merges)


def build_t5_tokenizer() -> T5TokenizerFast:
    """Build a T5 Unigram tokenizer over `PROMPT_WORDS` and ASCII characters (other characters map to <unk>).

    Ids follow T5: `<pad>`=0, `</s>`=1, `<unk>`=2. There are no `<extra_id_*>` sentinels, which only
    matter for T5's span-corruption pretraining.
    """
    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + word, -5.0) for word in sorted(set(PROMPT_WORDS))]
    pieces += [(chr(c), -10.0) for c in range(ord("!"), ord("~") + 1)]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)
