"""The offline CLIP tokenizer: one token per world word, and a lossless save/load round trip."""

import pytest
from transformers import AutoTokenizer, CLIPTokenizer

from diffusion_assets.shapes.tokenizer import BOS_ID, EOS_ID, MAX_LENGTH, build_tokenizer, world_captions


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_every_caption_decodes_back(tokenizer):
    for text in world_captions():
        ids = tokenizer(text).input_ids
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID and len(ids) <= MAX_LENGTH
        assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ,", ",") == text


def test_every_world_word_is_one_token(tokenizer):
    words = {w for text in world_captions() for w in text.replace(",", " ").split()}
    for word in words:
        assert len(tokenizer(word, add_special_tokens=False).input_ids) == 1, word


def test_unknown_text_still_encodes_without_unk(tokenizer):
    ids = tokenizer("a quixotic zebra!", add_special_tokens=False).input_ids
    assert EOS_ID not in ids


def test_save_and_reload_give_the_same_ids(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    for loader in (CLIPTokenizer, AutoTokenizer):
        again = loader.from_pretrained(tmp_path)
        assert again.model_max_length == MAX_LENGTH
        for text in world_captions()[::17]:
            assert (
                again(text, padding="max_length", max_length=MAX_LENGTH).input_ids
                == tokenizer(text, padding="max_length", max_length=MAX_LENGTH).input_ids
            )


def test_vocabulary_is_identical_in_another_process(tokenizer):
    # tokenizers' own BpeTrainer breaks ties by hash order; ours must not depend on the process
    import json
    import os
    import subprocess
    import sys

    code = "import json; from diffusion_assets.shapes.tokenizer import build_tokenizer as b; print(json.dumps(b().get_vocab()))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == tokenizer.get_vocab()
