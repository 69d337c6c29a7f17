"""The kohya prompt-line importer (sd-scripts / ai-toolkit sample prompts)."""

from __future__ import annotations

import pytest
import yaml

from diffusion_assets.catalog.kohya import dump_catalog, import_kohya, parse_line
from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.cli import main


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a cat", {"prompt": "a cat"}),
        (
            "masterpiece, a cat --n low quality, blurry --w 1024 --h 768 --d 42 --s 30 --l 7.5",
            {
                "prompt": "masterpiece, a cat",
                "negative_prompt": "low quality, blurry",
                "width": 1024,
                "height": 768,
                "seed": 42,
                "steps": 30,
                "guidance": 7.5,
            },
        ),
        ("a dog --l 4 --s 12", {"prompt": "a dog", "guidance": 4.0, "steps": 12}),
        ("pre--dash prompt --d 1", {"prompt": "pre--dash prompt", "seed": 1}),
    ],
)
def test_parse_line(line, expected):
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("x --q 3", "--q", "unknown option (supported: --n, --w"),
        ("x --w wide", "--w", "needs a int, got 'wide'"),
        ("--w 512", "prompt", "empty prompt"),
    ],
)
def test_bad_lines_name_the_line_the_option_and_the_format(tmp_path, line, field, message):
    path = tmp_path / "p.txt"
    path.write_text(f"# comment\n\n{line}\n")
    with pytest.raises(CatalogError) as info:
        import_kohya(path, "sd15")
    text = str(info.value)
    assert f"{path}, line 3, field '{field}': {message}" in text
    assert "hint: one prompt per line: `prompt text --n negative" in text


def test_imported_catalog_validates_and_keeps_every_line(tmp_path):
    source = tmp_path / "prompts.txt"
    source.write_text("a cat --d 1 --s 20\n# skip me\na dog --w 512 --h 512 --l 5\n")
    out = tmp_path / "imported.yaml"
    assert main(["import-kohya", str(source), "--model", "sd15", "--out", str(out)]) == 0
    loaded = load_catalog(out)
    assert [(e.id, e.prompt, e.seed) for e in loaded.catalog.entries] == [
        ("line-001", "a cat", 1),
        ("line-003", "a dog", None),
    ]
    assert yaml.safe_load(dump_catalog(import_kohya(source, "sd15")))["defaults"] == {"model": "sd15"}


def test_invalid_import_writes_nothing(tmp_path):
    source = tmp_path / "prompts.txt"
    source.write_text("a cat --w 500\n")
    out = tmp_path / "imported.yaml"
    assert main(["import-kohya", str(source), "--model", "sd15", "--out", str(out)]) == 1
    assert list(tmp_path.iterdir()) == [source]
