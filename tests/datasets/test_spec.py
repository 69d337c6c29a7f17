"""Dataset specs: the example specs load, and every invalid spec names its file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from diffusion_assets.datasets.build import build_dataset
from diffusion_assets.datasets.load import DatasetSpecError, load_spec
from tests.datasets.helpers import spec_dict, write_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "lora_datasets").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_specs_load(path):
    loaded = load_spec(path)
    assert loaded.name == path.stem
    assert loaded.spec.resolution % 8 == 0


def test_shapes_outline_matches_the_shapes_world_captions():
    spec = load_spec(REPO / "lora_datasets" / "shapes_outline.yaml").spec
    assert [(s.catalog, s.prior) for s in spec.sources] == [
        ("shapes_outline", False),
        ("shapes_filled_prior", True),
    ]
    # the captioner writes the trigger phrase for outlined images; prior images must not get it
    assert (spec.trigger.word, spec.trigger.placement) == ("sks", "none")
    from diffusion_assets.shapes.captions import STYLE_PHRASES

    assert spec.trigger.phrase == STYLE_PHRASES["outlined"]


def test_training_section_is_a_valid_trainer_config():
    config_module = pytest.importorskip("diffusion_assets.training.config")
    spec = load_spec(REPO / "lora_datasets" / "shapes_outline.yaml").spec
    config = config_module.LoraTrainConfig(**spec.training.trainer_fields(spec.resolution))
    assert (config.rank, config.resolution) == (spec.training.rank, 32)


def test_unquoted_yaml_dates_are_partition_keys(tmp_path):
    path = tmp_path / "dated.yaml"
    text = yaml.safe_dump(spec_dict()).replace("dates: all", "dates: [2026-11-28, 2026-11-27, 2026-11-28]")
    path.write_text(text)
    assert load_spec(path).spec.sources[0].dates == ["2026-11-27", "2026-11-28"]


def _without(key: str) -> dict:
    spec = spec_dict()
    del spec[key]
    return spec


def _with(**sections) -> dict:
    return spec_dict(**sections)


INVALID = [
    # (case, spec mapping, field named, words in the message)
    ("no sources", _without("sources"), "sources", "Field required"),
    ("empty sources", _with(sources=[]), "sources", "at least 1"),
    (
        "bad date",
        _with(sources=[{"catalog": "a", "dates": ["2026-13-01"]}]),
        "sources.0.dates",
        "not a date that exists",
    ),
    (
        "no such day",
        _with(sources=[{"catalog": "a", "dates": ["2026-02-30"]}]),
        "sources.0.dates",
        "day is out of range",
    ),
    (
        "not a date",
        _with(sources=[{"catalog": "a", "dates": ["yesterday"]}]),
        "sources.0.dates",
        "YYYY-MM-DD",
    ),
    ("bad catalog name", _with(sources=[{"catalog": "a/b"}]), "sources.0.catalog", "pattern"),
    ("catalog twice", _with(sources=[{"catalog": "a"}, {"catalog": "a"}]), "sources", "listed 2 times"),
    ("typo in filters", _with(filters={"dedup_distance": 3}), "filters.dedup_distance", "unknown field"),
    ("distance over 64", _with(filters={"dedup_max_distance": 65}), "filters.dedup_max_distance", "64"),
    ("unknown caption source", _with(captions={"source": "blip"}), "captions.source", "'captioner'"),
    (
        "unknown template field",
        _with(captions={"source": "prompt", "template": "{caption} in {colour}"}),
        "captions.template",
        "{colour}",
    ),
    (
        "template without caption",
        _with(captions={"source": "prompt", "template": "a photo"}),
        "captions.template",
        "neither",
    ),
    (
        "placement without word",
        _with(trigger={"placement": "prefix"}),
        "trigger.word",
        "needs a trigger word",
    ),
    ("two-word trigger", _with(trigger={"word": "sks style"}), "trigger.word", "not one word"),
    (
        "phrase without the word",
        _with(trigger={"word": "sks", "placement": "suffix", "phrase": "in outline style"}),
        "trigger.phrase",
        "does not contain",
    ),
    ("fraction over 0.5", _with(split={"validation_fraction": 0.7}), "split.validation_fraction", "0.5"),
    ("resolution not /8", _with(resolution=30), "resolution", "multiple of 8"),
    ("typo at top level", _with(resolutoin=32), "resolutoin", "unknown field"),
    ("unknown base model", _with(training={"base_model": "sd99"}), "training.base_model", "unknown model"),
    (
        "base model typo",
        _with(training={"base_model": "sdxl-bse"}),
        "training.base_model",
        "unknown model preset 'sdxl-bse' (did you mean sdxl-base?)",
    ),
    ("bad precision", _with(training={"mixed_precision": "fp8"}), "training.mixed_precision", "'bf16'"),
    (
        "validation without prompts",
        _with(training={"validation_every": 50}),
        "training.validation_prompts",
        "at least one",
    ),
    *[
        (
            f"template {case}",
            _with(captions={"source": "prompt", "template": text}),
            "captions.template",
            words,
        )
        for case, text, words in [
            ("conversion", "{caption!x}", "{caption!x} is not a plain {name}"),
            ("format spec", "{caption:d}", "{caption:d} is not a plain {name}"),
            ("positional field", "a {} drawing", "{} is not a plain {name}"),
            ("attribute", "{caption.upper}", "{caption.upper} is not a plain {name}"),
            ("unmatched brace", "{caption", "expected '}'"),
            ("stray closing brace", "{caption} }", "Single '}'"),
        ]
    ],
    (
        "typo in trainer options",
        _with(training={"options": {"lr_warmup": 5}}),
        "training.options.lr_warmup",
        "unknown trainer field",
    ),
    (
        "options overrides resolution",
        _with(training={"options": {"resolution": 64}}),
        "training.options.resolution",
        "top-level `resolution`",
    ),
    (
        "options overrides a training field",
        _with(training={"options": {"rank": 4}}),
        "training.options.rank",
        "training.rank",
    ),
    (
        "bad trainer option value",
        _with(training={"options": {"weight_decay": -1}}),
        "training.options.weight_decay",
        "greater than or equal to 0",
    ),
    (
        "score filter on prompts",
        _with(captions={"source": "prompt"}, filters={"min_caption_score": 0.5}),
        "filters.min_caption_score",
        "no caption score",
    ),
]


@pytest.mark.parametrize(("case", "mapping", "field", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_names_file_field_and_problem(tmp_path, case, mapping, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(mapping))
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    issues = [i for i in info.value.issues if i.field == field]
    assert issues, f"no issue for field {field!r}: {info.value}"
    assert any(words in i.message for i in issues), str(info.value)
    assert str(path) in str(info.value) and f"field '{field}'" in str(info.value)


def test_every_problem_is_listed_at_once(tmp_path):
    path = write_spec(
        tmp_path, resolution=30, split={"validation_fraction": 0.9}, trigger={"placement": "prefix"}
    )
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    # resolution passes the schema, so schema errors come first; fix them and the rest appear
    assert {i.field for i in info.value.issues} == {"split.validation_fraction"}
    assert "hint:" in str(info.value)
    path = write_spec(tmp_path, resolution=30, trigger={"placement": "prefix"})
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    assert {i.field for i in info.value.issues} == {"resolution", "trigger.word"}
    assert str(info.value).startswith("2 problems in dataset spec:")


@pytest.mark.parametrize(
    ("text", "words"),
    [("sources: [a, b", "not valid YAML at line"), ("- just\n- a list\n", "not a YAML mapping")],
    ids=["broken yaml", "not a mapping"],
)
def test_unreadable_spec(tmp_path, text, words):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(DatasetSpecError, match=words):
        load_spec(path)


def test_invalid_spec_writes_nothing(tmp_path):
    data_root = tmp_path / "data"
    with pytest.raises(DatasetSpecError):
        build_dataset(write_spec(tmp_path, resolution=30), data_root)
    assert not data_root.exists()


def test_template_problems_are_found_before_any_image_is_read(tmp_path):
    path = write_spec(tmp_path, captions={"source": "prompt", "template": "{caption!x} in {colour:d}"})
    with pytest.raises(DatasetSpecError) as info:
        build_dataset(path, tmp_path / "data")
    assert [i.field for i in info.value.issues] == ["captions.template"] * 3
    assert "template fields: {caption}" in str(info.value)  # the hint
    assert any("{colour}" in i.message for i in info.value.issues)


def test_trainer_option_problems_say_what_to_write(tmp_path):
    options = {"lr_warmup": 5, "resolution": 64, "learning_rate": 0.01, "weight_decay": 0.0}
    with pytest.raises(DatasetSpecError) as info:
        load_spec(write_spec(tmp_path, training={"options": options}))
    hints = {i.field: i.hint for i in info.value.issues}
    assert set(hints) == {
        "training.options.lr_warmup",
        "training.options.resolution",
        "training.options.learning_rate",
    }
    assert "lr_warmup_steps" in hints["training.options.lr_warmup"]
    assert "resolution: 64" in hints["training.options.resolution"]
    assert "learning_rate: 0.01" in hints["training.options.learning_rate"]


def test_valid_trainer_options_reach_the_trainer_config(tmp_path):
    from diffusion_assets.training.config import LoraTrainConfig

    options = {"lr_warmup_steps": 5, "weight_decay": 0.0, "latents": "sample"}
    spec = load_spec(write_spec(tmp_path, training={"options": options})).spec
    config = LoraTrainConfig(**spec.training.trainer_fields(spec.resolution))
    assert (config.lr_warmup_steps, config.weight_decay, config.latents, config.resolution) == (
        5,
        0.0,
        "sample",
        32,
    )
