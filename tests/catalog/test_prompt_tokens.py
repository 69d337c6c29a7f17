"""A prompt longer than the text encoder reads is an error at validation (or, allowed, a warning), counted
with the preset's own tokenizer; the manifest row records the counts the pipeline saw.

diffusers cuts prompts to ``tokenizer.model_max_length`` for CLIP (``encode_prompt`` in
``pipeline_stable_diffusion.py`` and ``pipeline_stable_diffusion_xl.py``: ``truncation=True``) and to
``max_sequence_length`` for Flux's T5 (``_get_t5_prompt_embeds`` in ``pipeline_flux.py``), and logs a
warning inside the run; start and end tokens count.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.catalog.prompt_tokens import _clip_from_vocab, _load
from diffusion_assets.generation.partition import RunInfo, generate_partition
from tests.conftest import write_catalog

REPO = Path(__file__).resolve().parents[2]
LONG = "a red circle on a black background, " * 600  # 21,600 characters
WORDS = " ".join(f"w{i}" for i in range(700))


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "long.yaml"
    path.write_text(text)
    return path


def test_a_long_prompt_for_shapes_tiny_is_refused_naming_the_count_and_what_it_reads(tmp_path, monkeypatch):
    for name in ("DIFFUSION_ASSETS_ROOT", "DIFFUSION_ASSETS_MODELS"):
        monkeypatch.delenv(name, raising=False)  # the repository's own models/shapes-tiny
    path = _write(tmp_path, f"defaults: {{model: shapes-tiny}}\nentries: [{{id: long, prompt: '{LONG}'}}]\n")
    from transformers import CLIPTokenizer

    expected = len(
        CLIPTokenizer.from_pretrained(REPO / "models" / "shapes-tiny" / "tokenizer")(LONG)["input_ids"]
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert f"{path}, entry 'long' (entries[0]), field 'prompt': prompt is {expected:,} tokens for " in message
    assert "shapes-tiny's tokenizer, but its text encoder reads 16 (start and end included)" in message
    assert "allow_truncated_prompts: true" in message  # the hint


@pytest.mark.parametrize(
    ("model", "field", "reads"),
    [
        ("sd15", "prompt", "tokenizer, but its text encoder reads 77"),
        ("sd15", "negative_prompt", "tokenizer, but its text encoder reads 77"),
        ("sdxl-base", "prompt", "tokenizer, but its text encoder reads 77"),
        ("flux-dev", "prompt", "tokenizer_2, but its text encoder reads 512"),
        ("flux-schnell", "prompt", "tokenizer_2, but its text encoder reads 256"),
    ],
)
def test_each_text_encoder_limit(project, model, field, reads):
    extra = ", true_cfg_scale: 2" if model.startswith("flux") else ""
    entry = (
        f"{{id: a, prompt: x, {field}: '{WORDS}'{extra}}}"
        if field != "prompt"
        else f"{{id: a, prompt: '{WORDS}'{extra}}}"
    )
    path = write_catalog(project, "long", f"defaults: {{model: {model}}}\nentries: [{entry}]\n")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert f"field '{field}'" in str(info.value) and reads in str(info.value), str(info.value)


def test_allowed_truncation_is_a_warning(project):
    path = write_catalog(
        project,
        "long",
        f"allow_truncated_prompts: true\ndefaults: {{model: sd15}}\nentries: [{{id: a, prompt: '{WORDS}'}}]\n",
    )
    [warning] = load_catalog(path).warnings
    assert warning.field == "prompt" and "reads 77" in warning.message


def test_the_longest_expansion_is_named(project):
    text = (
        "variables: {v: [short, '" + WORDS + "']}\ndefaults: {model: sd15}\n"
        "entries: [{id: grid, prompt: 'a {v} cat'}]\n"
    )
    with pytest.raises(CatalogError, match=r"\(longest: grid\[v=w0 w1"):
        load_catalog(write_catalog(project, "grid", text))


def test_without_a_tokenizer_a_lower_bound_is_used_and_said(project, monkeypatch):
    monkeypatch.setenv("DIFFUSION_ASSETS_MODELS", str(project / "no-models"))
    short = write_catalog(
        project, "short", "defaults: {model: sdxl-base}\nentries: [{id: a, prompt: a cat}]\n"
    )
    notes = [w.message for w in load_catalog(short).warnings]
    assert notes and all("lower bound" in n and str(project / "no-models") in n for n in notes)
    long = write_catalog(
        project, "long", f"defaults: {{model: sdxl-base}}\nentries: [{{id: a, prompt: '{WORDS}'}}]\n"
    )
    with pytest.raises(CatalogError, match=r"prompt is at least [\d,]+ tokens for sdxl-base's tokenizer,"):
        load_catalog(long)


CORPUS = [
    "a cat",
    "A  RED\tcircle\n\non a black background",
    "an emoji 🐈 and café, naïve résumé",
    "don't stop; it's the (best:1.2) [thing] {x}",
    "数字 123 ４５６ and more",
    "",
]


def test_the_clip_tokenizer_from_vocab_and_merges_counts_as_transformers_does(tmp_path, tiny_mirror):
    from transformers import CLIPTokenizer

    # the SD / SDXL hub repositories ship vocab.json + merges.txt (no tokenizer.json)
    model = json.loads(
        (tiny_mirror / "stable-diffusion-v1-5/stable-diffusion-v1-5/tokenizer/tokenizer.json").read_text()
    )
    folder = tmp_path / "tokenizer"
    folder.mkdir()
    (folder / "vocab.json").write_text(json.dumps(model["model"]["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["model"]["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    ours = _clip_from_vocab(folder)
    theirs = CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    for text in CORPUS:
        assert ours.encode(text).ids == theirs(text)["input_ids"], text
    assert _load(folder) is not None


def test_the_manifest_row_records_what_the_pipeline_read(project, shared_provider):
    text = (
        "allow_truncated_prompts: true\ndefaults: {model: sd15, width: 64, height: 64, steps: 2, negative_prompt: blurry}\n"
        f"entries: [{{id: long, prompt: '{WORDS}'}}, {{id: short, prompt: a cat}}]\n"
    )
    path = write_catalog(project, "tokens", text)
    result = generate_partition(
        path, "2026-11-28", project / "data", shared_provider, RunInfo(None, "tokens|x", "t")
    )
    rows = {r["entry_id"]: r for r in result.rows}
    tokenizer = shared_provider.load(result.jobs[rows["long"]["image_id"]].params.preset).pipe.tokenizer
    assert rows["long"]["prompt_tokens"] == len(tokenizer(WORDS)["input_ids"]) > 77
    assert (rows["long"]["max_prompt_tokens"], rows["long"]["prompt_truncated"]) == (77, True)
    assert (rows["short"]["prompt_tokens"], rows["short"]["negative_prompt_tokens"]) == (4, 3)
    assert rows["short"]["prompt_truncated"] is False
