"""Catalog validation: every malformed catalog names the file, the entry and the field."""

from __future__ import annotations

import pytest

from diffusion_assets.catalog.load import CatalogError, load_catalog

VALID = """
seed: 1
defaults: {model: sd15, width: 64, height: 64}
entries:
  - id: a
    prompt: "a cat"
"""

# (name, catalog text, substrings the error must contain)
MALFORMED = [
    (
        "unknown_top_field",
        "seeed: 1\nentries: [{id: a, prompt: x}]\ndefaults: {model: sd15}",
        ["field 'seeed'", "unknown field"],
    ),
    (
        "unknown_entry_field",
        "defaults: {model: sd15}\nentries: [{id: cat, prompt: x, stpes: 3}]",
        ["entry 'cat' (entries[0])", "field 'stpes'", "unknown field"],
    ),
    (
        "wrong_type",
        "defaults: {model: sd15}\nentries: [{id: cat, prompt: x, steps: many}]",
        ["entry 'cat'", "field 'steps'", "'many'", "hint: steps is the number"],
    ),
    (
        "non_positive_steps",
        "defaults: {model: sd15}\nentries: [{id: a, prompt: x}, {id: b, prompt: y, steps: 0}]",
        ["entry 'b' (entries[1])", "field 'steps'", "greater than 0"],
    ),
    (
        "duplicate_ids",
        "defaults: {model: sd15}\nentries: [{id: a, prompt: x}, {id: a, prompt: y}]",
        ["field 'id'", "duplicate id 'a'"],
    ),
    (
        "size_not_multiple_of_8",
        "defaults: {model: sd15, width: 500}\nentries: [{id: a, prompt: x}]",
        ["entry 'a'", "field 'width'", "500 is not divisible by 8"],
    ),
    (
        "flux_size_multiple_of_16",
        "defaults: {model: flux-dev, height: 1000}\nentries: [{id: a, prompt: x}]",
        ["field 'height'", "not divisible by 16"],
    ),
    (
        "unknown_preset",
        "defaults: {model: sd9}\nentries: [{id: a, prompt: x}]",
        ["entry 'a'", "field 'model'", "unknown model preset 'sd9'", "hint: a preset (sd15"],
    ),
    (
        "preset_typo",
        "defaults: {model: sdxl-bse}\nentries: [{id: a, prompt: x}]",
        ["entry 'a'", "field 'model'", "unknown model preset 'sdxl-bse' (did you mean sdxl-base?)"],
    ),
    (
        "unknown_scheduler",
        "defaults: {model: sd15, scheduler: euler_b}\nentries: [{id: a, prompt: x}]",
        ["defaults", "field 'scheduler'", "'euler_b'"],
    ),
    (
        "scheduler_family",
        "defaults: {model: flux-schnell, scheduler: ddim}\nentries: [{id: a, prompt: x}]",
        ["field 'scheduler'", "flow-matching"],
    ),
    (
        "schnell_guidance",
        "defaults: {model: flux-schnell, guidance: 3.5}\nentries: [{id: a, prompt: x}]",
        ["field 'guidance'", "guidance-distilled"],
    ),
    (
        "flux_negative_without_cfg",
        "defaults: {model: flux-dev}\nentries: [{id: a, prompt: x, negative_prompt: blur}]",
        ["field 'negative_prompt'", "true_cfg_scale"],
    ),
    (
        "refiner_without_refiner",
        "defaults: {model: sdxl-base, refiner_switch: 0.8}\nentries: [{id: a, prompt: x}]",
        ["field 'refiner_switch'", "no refiner"],
    ),
    (
        "controlnet_without_image",
        "defaults: {model: sdxl+controlnet-canny}\nentries: [{id: a, prompt: x}]",
        ["field 'control_image'", "needs a control_image"],
    ),
    (
        "missing_control_file",
        "defaults: {model: sdxl+controlnet-canny}\nentries: [{id: a, prompt: x, control_image: no.png}]",
        ["field 'control_image'", "file not found"],
    ),
    (
        "undefined_placeholder",
        "defaults: {model: sd15}\nentries: [{id: a, prompt: 'a {animal}'}]",
        ["entry 'a'", "field 'prompt'", "{animal} has no values"],
    ),
    (
        "bad_id",
        "defaults: {model: sd15}\nentries: [{id: 'has space', prompt: x}]",
        ["field 'id'", "hint: ids are"],
    ),
    ("no_entries", "defaults: {model: sd15}\nentries: []", ["field 'entries'"]),
    ("not_a_mapping", "- just\n- a list", ["not a YAML mapping"]),
    ("bad_yaml", "entries: [unclosed", ["not valid YAML", "line"]),
    # templates str.format accepts but a catalog does not: each would fail only while expanding
    (
        "unmatched_brace",
        "defaults: {model: sd15}\nentries: [{id: a, prompt: 'a } b'}]",
        ["field 'prompt'", "}}"],
    ),
    ("empty_field", "defaults: {model: sd15}\nentries: [{id: a, prompt: 'a {} b'}]", ["{}", "plain {name}"]),
    (
        "format_spec",
        "variables: {c: [x]}\ndefaults: {model: sd15}\nentries: [{id: a, prompt: '{c:d}'}]",
        ["entry 'a'", "field 'prompt'", "{c:d}"],
    ),
    (
        "conversion",
        "variables: {c: [x]}\ndefaults: {model: sd15}\nentries: [{id: a, prompt: '{c!x}'}]",
        ["field 'prompt'", "{c!x}"],
    ),
    (
        "nested_spec",
        "variables: {c: [x], w: ['5']}\ndefaults: {model: sd15}\nentries: [{id: a, prompt: '{c:{w}}'}]",
        ["field 'prompt'", "{c:{w}}"],
    ),
    (
        "dotted_variable",
        "variables: {a.b: [x]}\ndefaults: {model: sd15}\nentries: [{id: a, prompt: '{a.b}'}]",
        ["field 'variables.a.b'", "field 'prompt'", "{a.b}"],
    ),
    (
        "entry_variable_name",
        "defaults: {model: sd15}\nentries: [{id: a, prompt: x, variables: {'my var': [x]}}]",
        ["entry 'a'", "field 'variables'", "'my var'", "hint: variables:"],
    ),
    (
        "negative_template",
        "defaults: {model: sd15, negative_prompt: 'ugly {style'}\nentries: [{id: a, prompt: x}]",
        ["field 'negative_prompt'"],
    ),
    (
        "model_index_without_class",
        "defaults: {model: ./broken}\nentries: [{id: a, prompt: x}]",
        ["entry 'a'", "field 'model'", "_class_name"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_catalog_error_names_file_entry_and_field(tmp_path, text, expected):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text('{"unet": ["diffusers", "UNet2DConditionModel"]}')
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_every_problem_is_listed_once(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(
        "defaults: {model: sd15}\nentries: [{id: a, prompt: x, steps: -1}, {id: b, prompt: y, width: -8}]"
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert [(i.entry, i.field) for i in info.value.issues] == [
        ("entry 'a' (entries[0])", "steps"),
        ("entry 'b' (entries[1])", "width"),
    ]


def test_every_semantic_problem_is_listed(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(
        "defaults: {model: sd15}\nentries: [{id: a, prompt: x, width: 7}, {id: b, prompt: '{v}'}]"
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert [(i.entry, i.field) for i in info.value.issues] == [
        ("entry 'a' (entries[0])", "width"),
        ("entry 'b' (entries[1])", "prompt"),
    ]


def test_a_problem_in_one_entry_does_not_hide_another_entrys(tmp_path):
    path = tmp_path / "two.yaml"
    path.write_text(
        "variables: {v: [x, x]}\ndefaults: {model: sd15}\n"
        "entries: [{id: a, prompt: y, width: 7}, {id: b, prompt: '{v}'}]"
    )
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert [(i.entry, i.field) for i in info.value.issues] == [
        ("entry 'a' (entries[0])", "width"),
        ("entry 'b' (entries[1])", "variables"),  # {v} lists x twice
    ]


def test_valid_catalog_loads_with_name_and_hash(tmp_path):
    path = tmp_path / "fine.yaml"
    path.write_text(VALID)
    loaded = load_catalog(path)
    assert loaded.name == "fine"
    assert len(loaded.sha256) == 64
    assert loaded.catalog.entries[0].prompt == "a cat"


def test_local_model_folder_must_be_a_pipeline(tmp_path):
    (tmp_path / "empty").mkdir()
    path = tmp_path / "local.yaml"
    path.write_text("defaults: {model: ./empty}\nentries: [{id: a, prompt: x}]")
    with pytest.raises(CatalogError, match="field 'model'.*no model_index.json"):
        load_catalog(path)
