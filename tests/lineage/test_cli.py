"""``diffusion-assets lineage``: arguments, text and JSON output, exit codes."""

from __future__ import annotations

import json

import pytest

from diffusion_assets.cli import main
from tests.lineage.edits import edit_pixels


@pytest.fixture
def data_env(world, monkeypatch):
    monkeypatch.setenv("DIFFUSION_ASSETS_DATA", str(world.data))
    return world


def test_png_path_prints_the_text_lineage(data_env, capsys):
    assert main(["lineage", str(data_env.png(0))]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"Lineage of image {data_env.rows[0]['image_id']}  (source: manifests; store: scan)"
    )
    assert "\nAdapters (1)\n" in out


@pytest.mark.parametrize("field", ["image_id", "sha256", "pixel_sha256"])
def test_json_output_is_the_forward_document(data_env, capsys, field):
    assert main(["lineage", data_env.rows[1][field], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["direction"], doc["image"]["image_id"]) == ("forward", data_env.rows[1]["image_id"])
    assert doc["adapters"][0]["adapter_id"] == data_env.adapter_id


@pytest.mark.parametrize("flag", ["--adapter", "--dataset"])
def test_reverse_lineage_from_the_command_line(data_env, capsys, flag):
    value = data_env.adapter_id if flag == "--adapter" else "style"
    assert main(["lineage", flag, value, "--limit", "1", "--json", "--data", str(data_env.data)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["direction"], doc["sources"]["images"], len(doc["images"])) == ("reverse", 4, 1)


def test_a_tampered_png_exits_2(data_env, capsys):
    edit_pixels(data_env.png(0))
    assert main(["lineage", str(data_env.png(0))]) == 2
    assert "!! MODIFIED after generation: sha256" in capsys.readouterr().out


def test_index_flag_builds_the_index_then_reports_it_up_to_date(data_env, capsys):
    assert main(["lineage", "--index"]) == 0
    assert "wrote " in capsys.readouterr().out and (data_env.data / "lineage.duckdb").is_file()
    assert main(["lineage", "--index", data_env.rows[0]["image_id"]]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lineage index up to date") and "store: index" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lineage", "0123456789abcdef0123"], "lineage: no image matches"),
        (["lineage", "--adapter", "nope"], "lineage: no adapter 'nope'"),
        (["lineage"], "give one of"),
        (["lineage", "x", "--adapter", "y"], "give one of"),
        (["lineage", "--adapter", "x", "--dataset", "y"], "give one of"),
    ],
)
def test_nothing_to_trace_exits_1_with_a_message(data_env, capsys, argv, message):
    assert main(argv) == 1
    assert message in capsys.readouterr().err
