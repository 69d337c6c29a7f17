"""Inputs that exhausted the machine are refused, in a fresh process, with memory that does not grow with
the input; YAML that a reader would silently misread (a key given twice, a date that does not exist, an
integer too long to convert) is a named error.

YAML rules: keys of a mapping must be unique (YAML 1.2 §3.2.1.1, "The content of a mapping node is an
unordered set of key/value node pairs, with the restriction that each of the keys is unique"); PyYAML keeps
the last value silently. ``<<`` merge keys (the YAML 1.1 merge type) may be overridden by the mapping
that merges them.
"""

from __future__ import annotations

import sys

import pytest
import yaml

from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.datasets.load import DatasetSpecError, load_spec
from diffusion_assets.yaml_input import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from tests.datasets.helpers import spec_dict
from tests.refusals import ENTRY, KINDS, measured, write_hostile

RSS_BOUND = 300 << 20
"""Peak memory of a refusing `validate` (about 45 MB here; the hostile inputs took 600-850 MB before)."""

WORDS = {
    "alias-bomb": "once aliases are expanded",
    "alias-bomb-variables": "once aliases are expanded",
    "mapping-bomb": "once aliases are expanded",
    "deep-nesting": "nest",  # ours at MAX_DEPTH, or libyaml's own limit (1,000) when its scanner gets there first
    "variables-10M": "expands to 9,765,625 images (25 v0 × 25 v1 × 25 v2 × 25 v3 × 25 v4 × images_per_prompt 1), "
    "over the cap of 10,000 images per partition",
    "images-per-prompt": "expands to 100,000,000 images",
    "many-entries": f"more than {MAX_NODES:,} values",
    "huge-scalar": f"input files may have at most {MAX_FILE_BYTES:,}",
    "huge-file": f"input files may have at most {MAX_FILE_BYTES:,}",
    "device": "not a regular file",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_validate_refuses_each_hostile_kind_with_bounded_memory(tmp_path, kind):
    path = write_hostile(kind, tmp_path / "prompts")
    result = measured([sys.executable, "-m", "diffusion_assets.cli", "validate", str(path)], timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAIL {path}" in result.stderr and WORDS[kind] in result.stderr, result.stderr
    assert result.max_rss_bytes < RSS_BOUND, f"{result.max_rss_bytes / 2**20:.0f} MB"


def test_a_hostile_dataset_spec_is_refused_too(tmp_path):
    path = write_hostile("alias-bomb", tmp_path / "lora_datasets", "style")
    code = f"from diffusion_assets.datasets.load import load_spec\nload_spec({str(path)!r})"
    result = measured([sys.executable, "-c", code], timeout=120)
    assert result.returncode == 1 and "DatasetSpecError" in result.stderr and "aliases" in result.stderr
    assert result.max_rss_bytes < RSS_BOUND


def test_nesting_deeper_than_the_bound_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("variables: {v: " + "[" * (MAX_DEPTH + 1) + "x" + "]" * (MAX_DEPTH + 1) + "}\n" + ENTRY)
    with pytest.raises(CatalogError, match=f"collections nested more than {MAX_DEPTH} deep, at line 1"):
        load_catalog(path)


def test_normal_anchors_and_merge_keys_still_work(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "variables: {c: &colours [red, blue]}\n"
        "defaults: &d {model: shapes-render, images_per_prompt: 2}\n"
        "entries:\n"
        "  - {id: a, prompt: 'a {c} circle on a black background', variables: {c: *colours}}\n"
        "  - {id: b, prompt: 'a {c} square on a black background', <<: {images_per_prompt: 3}}\n"
    )
    catalog = load_catalog(path).catalog
    assert catalog.entries[0].variables == {"c": ["red", "blue"]}
    assert catalog.entries[1].images_per_prompt == 3


# (where the key is given twice, catalog text): every mapping of the file, block or flow style
DUPLICATES = [
    ("top level", "seed: 1\nseed: 2\n" + ENTRY, "seed"),
    (
        "defaults",
        "defaults: {model: shapes-render, steps: 4, steps: 40}\nentries: [{id: a, prompt: x}]\n",
        "steps",
    ),
    (
        "entry, block style",
        "defaults: {model: sd15}\nentries:\n  - id: a\n    prompt: x\n    steps: 4\n    steps: 40\n",
        "steps",
    ),
    ("variables", "variables:\n  c: [red]\n  c: [blue]\n" + ENTRY, "c"),
    (
        "nested lora",
        "defaults: {model: sd15}\nentries: [{id: a, prompt: x, lora: {path: a.safetensors, path: b.safetensors}}]\n",
        "path",
    ),
    ("quoted and plain", "'seed': 1\nseed: 2\n" + ENTRY, "seed"),
]


@pytest.mark.parametrize(("case", "text", "key"), DUPLICATES, ids=[d[0] for d in DUPLICATES])
def test_a_key_given_twice_is_an_error_naming_file_line_and_key(tmp_path, case, text, key):
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert str(path) in message and f"found key '{key}' twice (first at line" in message, message
    assert "not valid YAML at line" in message


def test_a_key_given_twice_in_a_dataset_spec_is_an_error(tmp_path):
    path = tmp_path / "style.yaml"
    path.write_text(yaml.safe_dump(spec_dict()) + "resolution: 64\n")
    with pytest.raises(DatasetSpecError, match="found key 'resolution' twice"):
        load_spec(path)


# dates that do not exist, anywhere a YAML reader would turn them into a date
BAD_DATES = ["2026-02-30", "2026-13-01", "2025-02-29", "2026-02-30T10:00:00"]


@pytest.mark.parametrize("text", BAD_DATES)
def test_a_date_that_does_not_exist_in_a_spec_names_the_file_and_field(tmp_path, text):
    path = tmp_path / "style.yaml"
    path.write_text(yaml.safe_dump(spec_dict()).replace("dates: all", f"dates: [{text}]"))
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message and "field 'sources.0.dates'" in message and repr(text) in message, message


@pytest.mark.parametrize("text", BAD_DATES)
def test_date_like_text_in_a_catalog_stays_text(tmp_path, text):
    path = tmp_path / "dated.yaml"
    path.write_text(f"description: {text}\nvariables: {{d: [{text}]}}\n" + ENTRY)
    catalog = load_catalog(path).catalog
    assert catalog.description == text and catalog.variables == {"d": [text]}


def test_an_integer_too_long_to_read_is_a_yaml_error_with_its_line(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("description: x\nseed: 1" + "0" * 5000 + "\n" + ENTRY)
    with pytest.raises(CatalogError, match=r"not valid YAML at line 2, column 7: integer cannot be read"):
        load_catalog(path)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_infinity_are_not_settings(tmp_path, value):
    path = tmp_path / "nan.yaml"
    path.write_text(f"defaults: {{model: sd15, guidance: {value}}}\nentries: [{{id: a, prompt: x}}]\n")
    with pytest.raises(CatalogError, match="field 'guidance'"):
        load_catalog(path)


def test_error_messages_show_bounded_values(tmp_path):
    path = tmp_path / "long.yaml"
    path.write_text("description: [" + ", ".join(["word"] * 5000) + "]\n" + ENTRY)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert len(str(info.value)) < 1000 and "..." in str(info.value)
