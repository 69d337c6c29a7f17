"""A dataset spec is checked against the project's catalogs before the Dagster step runs: a source that
does not exist, an `entries` glob that matches nothing and captions that would drop the trigger are
named errors (spec file and field), in `load_spec`, `validate` and the build."""

from __future__ import annotations

import pytest
import yaml

from diffusion_assets.cli import main
from diffusion_assets.datasets.build import build_dataset, read_latest
from diffusion_assets.datasets.load import DatasetSpecError, load_spec
from diffusion_assets.datasets.members import DatasetBuildError
from tests.conftest import write_catalog
from tests.datasets.helpers import pattern, spec_dict, write_captions, write_partition, write_spec

CATALOG = (
    "variables: {shape: [circle, square]}\ndefaults: {model: shapes-render}\n"
    "entries:\n  - {id: red, prompt: 'a red {shape} on a black background, in sks outline style'}\n"
    "  - {id: plain, prompt: 'a blue {shape} on a black background'}\n"
)


@pytest.fixture
def specs(project, monkeypatch):
    """The project's lora_datasets/ folder (what the sensor watches), with catalog `outline` beside it."""
    folder = project / "lora_datasets"
    folder.mkdir()
    monkeypatch.setenv("DIFFUSION_ASSETS_DATASETS", str(folder))
    write_catalog(project, "outline", CATALOG)
    return folder


def _spec(specs, **sections):
    base = {"sources": [{"catalog": "outline"}], "captions": {"source": "prompt"}, "trigger": {}}
    path = specs / "style.yaml"
    path.write_text(yaml.safe_dump(spec_dict(**{**base, **sections})))
    return path


def test_a_source_catalog_that_does_not_exist_is_named_with_the_closest(specs):
    path = _spec(specs, sources=[{"catalog": "outlin"}])
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    [issue] = info.value.issues
    assert (issue.file, issue.field) == (str(path), "sources.0.catalog")
    assert "catalog 'outlin' does not exist" in issue.message and "did you mean outline?" in issue.hint


def test_a_catalog_whose_file_is_gone_but_whose_images_exist_is_a_source(specs, project):
    write_partition(project / "data", [("img00", "p", pattern(0))], catalog="retired")
    load_spec(_spec(specs, sources=[{"catalog": "retired"}], filters={"entries": ["e-img*"]}))


@pytest.mark.parametrize(
    ("globs", "bad"),
    [(["blue*"], 0), (["red*", "green*"], 1), (["red[shape=circle]", "plain[shape=hexagon]"], 1)],
)
def test_an_entry_glob_that_matches_nothing_is_named(specs, globs, bad):
    path = _spec(specs, filters={"entries": globs})
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    [issue] = info.value.issues
    assert (
        issue.field == f"filters.entries.{bad}"
        and "matches no entry id of the sources (outline)" in issue.message
    )
    assert "ids look like:" in issue.hint


def test_globs_match_expanded_ids_with_literal_brackets(specs):
    load_spec(
        _spec(
            specs,
            filters={"entries": ["red[shape=circle]", "plain[*]"]},
            trigger={"word": "sks", "placement": "prefix"},
        )
    )


def test_captions_that_would_drop_the_trigger_are_refused_before_the_build(specs):
    # placement none and captions from prompts: `plain` prompts never say the trigger
    path = _spec(specs, trigger={"word": "sks", "placement": "none"})
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    [issue] = info.value.issues
    assert issue.field == "trigger.placement"
    assert "2 caption(s) of catalog 'outline' would lack the trigger 'sks'" in issue.message
    template = _spec(
        specs, trigger={"word": "sks"}, captions={"source": "captioner", "template": "a drawing of {prompt}"}
    )
    with pytest.raises(DatasetSpecError, match="field 'captions.template'.*would lack the trigger"):
        load_spec(template)
    load_spec(_spec(specs, trigger={"word": "sks", "placement": "suffix"}))  # the suffix adds it


def test_prior_captions_that_hold_the_trigger_are_refused(specs):
    path = _spec(
        specs, sources=[{"catalog": "outline", "prior": True}], trigger={"word": "sks", "placement": "prefix"}
    )
    with pytest.raises(DatasetSpecError, match="prior catalog 'outline' would contain the trigger 'sks'"):
        load_spec(path)


def test_a_spec_outside_the_project_is_checked_only_on_request(tmp_path, specs):
    path = write_spec(tmp_path / "scratch", sources=[{"catalog": "nowhere"}])
    load_spec(path)  # a scratch folder: no catalogs to check against
    with pytest.raises(DatasetSpecError, match="catalog 'nowhere' does not exist"):
        load_spec(path, check_sources=True)


def test_validate_accepts_dataset_specs(specs, capsys):
    good = _spec(specs, trigger={"word": "sks", "placement": "prefix"})
    assert main(["validate", str(good)]) == 0
    assert f"ok   {good}: dataset spec over outline" in capsys.readouterr().out
    elsewhere = specs.parent / "elsewhere.yaml"  # outside lora_datasets/: recognised by its fields
    elsewhere.write_text(yaml.safe_dump(spec_dict(sources=[{"catalog": "nowhere"}])))
    assert main(["validate", str(elsewhere)]) == 1
    err = capsys.readouterr().err
    assert f"FAIL {elsewhere}\n1 problem in dataset spec:" in err and "field 'sources.0.catalog'" in err
    assert main(["validate"]) == 0  # both folders, every file
    out = capsys.readouterr().out
    assert "outline.yaml: 4 images per partition" in out and "style.yaml: dataset spec" in out


def test_the_build_refuses_captions_without_the_trigger_and_writes_nothing(tmp_path):
    # captions from a captioner cannot be judged before they exist: the build checks them before writing
    data = tmp_path / "data"
    write_partition(data, [(f"img{i}", f"prompt {i}", pattern(i)) for i in range(3)])
    write_captions(data, {"img0": "a sks circle", "img1": "a circle", "img2": "a square"})
    path = write_spec(tmp_path, trigger={"word": "sks", "placement": "none"})
    with pytest.raises(DatasetBuildError) as info:
        build_dataset(path, data)
    assert f"{path}: 2 caption(s) break the trigger rule for 'sks'" in str(info.value)
    assert not (data / "datasets").exists() and read_latest(data, "style") is None


def test_the_validate_command_names_the_file_of_a_bad_date(tmp_path, capsys):
    path = tmp_path / "style.yaml"
    path.write_text(yaml.safe_dump(spec_dict()).replace("dates: all", "dates: [2026-02-30]"))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"FAIL {path}" in err and "'2026-02-30' is not a date that exists" in err


def test_validating_a_spec_needs_no_torch(specs):
    from tests.test_fast_start import HEAVY, _loaded

    path = _spec(specs, trigger={"word": "sks", "placement": "prefix"}, filters={"entries": ["red*"]})
    body = f"from diffusion_assets.cli import main\ncode = main(['validate', {str(path)!r}])\nassert code == 0, code"
    loaded = _loaded(body)
    assert "diffusion_assets" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
