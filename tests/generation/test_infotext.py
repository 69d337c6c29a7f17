"""A1111 infotext read back exactly, by sd-parsers and by A1111's own parsing rules (issue 10 item 4).

``a1111_parse`` re-states ``parse_generation_parameters`` and ``unquote`` of AUTOMATIC1111's
``modules/infotext_utils.py`` (v1.10): the last line holds the parameters when ``re_param`` finds
at least three pairs in it; the other lines are the prompt until a line that starts with
``Negative prompt:``; every line is stripped; a value in double quotes is JSON (``unquote``); an
``NxM`` value is split into ``<key>-1`` and ``<key>-2``.
"""

from __future__ import annotations

import io
import json
import re
import textwrap

import pytest
from PIL import Image
from sd_parsers import ParserManager

from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.generation.pngmeta import png_bytes

# A1111 modules/infotext_utils.py
RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")


def a1111_parse(text: str) -> dict[str, str]:
    res: dict[str, str] = {}
    prompt, negative, done_with_prompt = "", "", False
    *lines, lastline = text.strip().split("\n")
    if len(RE_PARAM.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    for key, value in RE_PARAM.findall(lastline):
        if value[0] == '"' and value[-1] == '"':
            value = json.loads(value)
        size = RE_IMAGESIZE.match(value)
        if size is not None:
            res[f"{key}-1"], res[f"{key}-2"] = size.group(1), size.group(2)
        else:
            res[key] = value
    res["Prompt"], res["Negative prompt"] = prompt, negative
    return res


BASE = {
    "steps": 4,
    "sampler": "DPM++ 2M Karras",
    "guidance_scale": 6.5,
    "seed": 123456789012,
    "width": 32,
    "height": 48,
    "model_weights_hash": "ab" * 32,
    "preset": "sd15",
    "negative_prompt": "",
}

# awkward but legal prompts and names: commas, colons, quotes, backslashes, newlines, emoji, a line
# that looks like a parameters line, JSON-ish text, non-Latin scripts
CORPUS = [
    {"prompt": "a red circle, on a gray background"},
    {"prompt": "style: watercolor, ratio 16:9", "negative_prompt": "blurry, text: watermark"},
    {"prompt": 'a sign that says "hello, world"', "negative_prompt": 'a "quoted" \\ backslash'},
    {"prompt": "first line\nsecond line 🐱🎨\nthird, with: both", "negative_prompt": "low\nquality 😢"},
    {"prompt": "Steps: 20, Sampler: Euler, Seed: 1\nthe real prompt", "negative_prompt": "CFG scale: 9"},
    {"prompt": '{"json": [1, 2]}, émigré café, 日本語の猫, Ελληνικά'},
    {"prompt": "a cat", "lora_path": "loras/my,style:v2.safetensors", "lora_weights_hash": "cd" * 32},
    {
        "prompt": "sdxl, refined",
        "preset": "sdxl-base+refiner",
        "refiner_model_id": "stabilityai/stable-diffusion-xl-refiner-1.0",
        "refiner_switch": 0.8,
    },
]


def _parameters(row: dict) -> str:
    data = png_bytes(Image.new("RGB", (row["width"], row["height"])), row)
    with Image.open(io.BytesIO(data)) as image:
        return image.info["parameters"]


def _png(row: dict, tmp_path) -> str:
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(Image.new("RGB", (row["width"], row["height"])), row))
    return path


@pytest.mark.parametrize("fields", CORPUS, ids=lambda f: f["prompt"][:24])
def test_a1111_reads_back_every_field_as_recorded(fields):
    row = {**BASE, **fields}
    got = a1111_parse(_parameters(row))
    assert got["Prompt"] == row["prompt"]
    assert got["Negative prompt"] == row["negative_prompt"]
    assert got["Steps"] == str(row["steps"]) and got["Seed"] == str(row["seed"])
    assert got["Sampler"] == row["sampler"] and float(got["CFG scale"]) == row["guidance_scale"]
    assert (got["Size-1"], got["Size-2"]) == (str(row["width"]), str(row["height"]))
    assert got["Model hash"] == row["model_weights_hash"][:10] and got["Model"] == row["preset"]
    if row.get("lora_path"):
        assert got["Lora hashes"] == f"my,style:v2: {row['lora_weights_hash'][:10]}"
    if row.get("refiner_model_id"):
        assert got["Refiner"] == row["refiner_model_id"]
        assert float(got["Refiner switch at"]) == row["refiner_switch"]
    assert got["Version"].startswith("diffusion_assets ")


@pytest.mark.parametrize("fields", CORPUS, ids=lambda f: f["prompt"][:24])
def test_sd_parsers_reads_back_the_prompts_and_the_sampler(fields, tmp_path):
    row = {**BASE, **fields}
    info = ParserManager().parse(_png(row, tmp_path))
    sampler = info.samplers[0]
    assert [p.value for p in sampler.prompts] == [row["prompt"]]
    assert [p.value for p in sampler.negative_prompts] == (
        [row["negative_prompt"]] if row["negative_prompt"] else []
    )
    assert sampler.name == row["sampler"]
    assert (sampler.parameters["seed"], sampler.parameters["steps"]) == (str(row["seed"]), str(row["steps"]))
    assert float(sampler.parameters["cfg_scale"]) == row["guidance_scale"]
    assert sampler.model.hash == row["model_weights_hash"][:10]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ('prompt: "a cat\\nNegative prompt: dogs"', "prompt"),
        ('prompt: "🐱 a cat\\nwith whiskers\\nNegative prompt: blurry, dogs 🐶"', "prompt"),
        ('prompt: "a cat, Negative prompt: dogs"', "prompt"),  # sd-parsers splits anywhere
        ('prompt: "a {x}", variables: {x: [cat, "dog\\nNegative prompt: cats"]}', "prompt"),
        ('prompt: "a cat", negative_prompt: "blurry\\nNegative prompt: more"', "negative_prompt"),
    ],
)
def test_a_prompt_holding_the_negative_marker_is_refused_at_validation(project, entry, field):
    """No escape exists for it in A1111's format: refused, naming the entry and field, with a fix."""
    path = project / "prompts" / "p.yaml"
    path.write_text(textwrap.dedent(f"defaults: {{model: sd15}}\nentries: [{{id: a, {entry}}}]\n"))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    issues = [i for i in info.value.issues if i.field == field and i.entry == "entry 'a' (entries[0])"]
    assert any("Negative prompt:" in i.message and i.hint for i in issues), str(info.value)
