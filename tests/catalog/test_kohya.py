"""The kohya prompt-file importer, as a table of lines and files against sd-scripts' own parsing rules.

The rules are kohya-ss/sd-scripts ``library/train_util.py`` (commit 48d368fa): ``load_prompts`` opens
the file as UTF-8, keeps ``line.strip()`` of each line that is not empty and whose first character is
not ``#``; ``line_to_prompt_dict`` splits a line at ``" --"`` and matches each option with
``re.match(<pattern>, part, re.IGNORECASE)``: ``w``/``h``/``d``/``s`` ``(\\d+)``, ``l``/``g`` ``([\\d\\.]+)``,
``n`` ``(.+)``, ``ss`` ``(.+)``; a later option wins. Samplers are ``get_my_scheduler``'s names. For
Flux, ``--g`` is the embedded guidance and ``--l`` the CFG scale (``flux_train_utils.py``,
``sample_image_inference``). Where sd-scripts would drop or change something silently, the import is an
error instead (see ``diffusion_assets/catalog/kohya.py``).
"""

from __future__ import annotations

import pytest
import yaml

from diffusion_assets.catalog.kohya import dump_catalog, import_kohya, parse_line
from diffusion_assets.catalog.load import CatalogError, load_catalog
from diffusion_assets.cli import main

# (line, model family, the entry sd-scripts' reading gives)
LINES = [
    ("a cat", "sd", {"prompt": "a cat"}),
    (
        "masterpiece, a cat --n low quality, blurry --w 1024 --h 768 --d 42 --s 30 --l 7.5",
        "sd",
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
    ("a dog --l 4 --s 12", "sd", {"prompt": "a dog", "guidance": 4.0, "steps": 12}),
    # the split is at " --" only: dashes inside a word stay in the prompt
    ("pre--dash prompt --d 1", "sd", {"prompt": "pre--dash prompt", "seed": 1}),
    # re.IGNORECASE: upper-case options are options
    (
        "a red circle --W 32 --H 32 --D 11 --S 3",
        "sd",
        {"prompt": "a red circle", "width": 32, "height": 32, "seed": 11, "steps": 3},
    ),
    (
        "a red circle --N Blurry --L 2.5",
        "sd",
        {"prompt": "a red circle", "negative_prompt": "Blurry", "guidance": 2.5},
    ),
    # a later option overrides an earlier one
    ("x --w 64 --w 128", "sd", {"prompt": "x", "width": 128}),
    # --n takes the whole part, commas and colons included, up to the next " --"
    ("x --n ugly: very, bad --s 4", "sd", {"prompt": "x", "negative_prompt": "ugly: very, bad", "steps": 4}),
    # samplers, by sd-scripts' names (k_ forms are aliases); the option name ignores case
    ("x --ss euler_a", "sd", {"prompt": "x", "scheduler": "euler_a"}),
    ("x --SS k_euler", "sd", {"prompt": "x", "scheduler": "euler"}),
    ("x --ss dpmsolver++", "sdxl", {"prompt": "x", "scheduler": "dpmpp_2m"}),
    ("x --ss k_lms", "sd", {"prompt": "x", "scheduler": "lms"}),
    # an empty trailing option part matches nothing
    ("a cat --", "sd", {"prompt": "a cat"}),
    # Flux: --g is the guidance embedding, --l the (true) CFG scale
    ("x --g 3.5 --l 4", "flux", {"prompt": "x", "guidance": 3.5, "true_cfg_scale": 4.0}),
]


@pytest.mark.parametrize(("line", "family", "expected"), LINES, ids=[row[0][:40] for row in LINES])
def test_parse_line_as_sd_scripts_reads_it(line, family, expected):
    assert parse_line(line, family) == expected


# (line, option named, words of the message): what sd-scripts would drop or change silently
REFUSED = [
    ("x --q 3", "--q", "unknown option (sd-scripts ignores it silently"),
    ("x --w wide", "--w", "needs a value"),
    ("x --s -1", "--s", "needs a value"),  # (\d+) has no sign: sd-scripts ignores it
    ("x --w 512px", "--w", "sd-scripts reads '512' and drops 'px'"),
    ("x --l 7.5.1", "--l", "needs a number"),  # float() fails: sd-scripts logs and ignores it
    ("x --ss euler_b", "--ss", "would use DDIM instead"),  # get_my_scheduler's fallback
    ("x --ss EULER", "--ss", "did you mean euler?"),  # sampler names are compared exactly
    ("x --g 3.5", "--g", "Flux's guidance embedding"),
    ("x --cn edges.png", "--cn", "control_image"),
    ("--w 512", "prompt", "starts with an option"),
    ("a cat\t--w 32", "--w", "tab or other space"),
]


@pytest.mark.parametrize(("line", "field", "message"), REFUSED, ids=[row[0] for row in REFUSED])
def test_lines_sd_scripts_would_misread_are_refused_naming_line_and_option(tmp_path, line, field, message):
    path = tmp_path / "p.txt"
    path.write_text(f"# comment\n\n{line}\n")
    with pytest.raises(CatalogError) as info:
        import_kohya(path, "sd15")
    text = str(info.value)
    assert f"{path}, line 3, field '{field}': " in text
    assert message in text
    assert "hint: one prompt per line: `prompt text --n negative" in text


# (file bytes, prompts sd-scripts keeps, with their line numbers)
FILES = [
    # a UTF-8 byte-order mark (Windows Notepad) is dropped, not glued to the first prompt
    (b"\xef\xbb\xbfa red circle --w 32\nb\n", [(1, "a red circle"), (2, "b")]),
    (b"\xef\xbb\xbf# a comment\nb\n", [(2, "b")]),
    # only a line whose first character is # is a comment: an indented # is a prompt
    (b"#skip\n  # kept\n", [(2, "# kept")]),
    # universal newlines: \r\n and a lone \r end lines; blank and whitespace-only lines are skipped
    (b"a\r\nb\rc\n\n   \n\td\t\n", [(1, "a"), (2, "b"), (3, "c"), (6, "d")]),
    # str.splitlines would also split at U+2028; sd-scripts' readlines does not
    ("a\u2028b\n".encode(), [(1, "a\u2028b")]),
]


@pytest.mark.parametrize(
    ("data", "expected"), FILES, ids=["bom", "bom-comment", "indented-hash", "newlines", "u2028"]
)
def test_prompt_files_are_split_into_lines_as_sd_scripts_does(tmp_path, data, expected):
    path = tmp_path / "p.txt"
    path.write_bytes(data)
    entries = import_kohya(path, "sd15")["entries"]
    assert [(e["id"], e["prompt"]) for e in entries] == [(f"line-{n:03d}", text) for n, text in expected]


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(b"a cat\nna\xefve\n")
    with pytest.raises(CatalogError, match=r"line 2: not UTF-8"):
        import_kohya(path, "sd15")


def test_an_unknown_model_suggests_the_closest_preset(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a cat\n")
    with pytest.raises(CatalogError, match=r"unknown model preset 'sdxl-bse' \(did you mean sdxl-base\?\)"):
        import_kohya(path, "sdxl-bse")


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


@pytest.mark.parametrize("out", [True, False], ids=["to-file", "to-stdout"])
def test_invalid_import_writes_nothing(tmp_path, capsys, out):
    source = tmp_path / "prompts.txt"
    source.write_text("a cat --w 500\n")
    args = ["--out", str(tmp_path / "imported.yaml")] if out else []
    assert main(["import-kohya", str(source), "--model", "sd15", *args]) == 1
    assert list(tmp_path.iterdir()) == [source]
    assert "500 is not divisible by 8" in capsys.readouterr().err
