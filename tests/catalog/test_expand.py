"""Template expansion and per-image seeds."""

from __future__ import annotations

from diffusion_assets.catalog.expand import expand_catalog
from diffusion_assets.catalog.load import load_catalog

GRID = """
seed: 5
variables:
  colour: [red, blue]
  shape: [circle, square, triangle]
defaults: {model: sd15, images_per_prompt: 2, steps: 10, negative_prompt: "blurry {colour}"}
entries:
  - id: grid
    prompt: "a {colour} {shape}"
  - id: single
    prompt: "a plain prompt"
    steps: 3
    seed: 99
"""


def _jobs(tmp_path, text=GRID, date="2026-11-28"):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return expand_catalog(load_catalog(path), date)


def test_variables_expand_to_the_cartesian_product(tmp_path):
    jobs = [j for j in _jobs(tmp_path) if j.base_entry_id == "grid"]
    assert len(jobs) == 2 * 3 * 2
    assert {j.prompt for j in jobs} == {
        f"a {c} {s}" for c in ("red", "blue") for s in ("circle", "square", "triangle")
    }
    assert jobs[0].entry_id == "grid[colour=red,shape=circle]"
    assert jobs[0].template_vars == {"colour": "red", "shape": "circle"}
    assert jobs[0].negative_prompt == "blurry red"


def test_entry_overrides_and_preset_defaults_resolve(tmp_path):
    jobs = _jobs(tmp_path)
    single = [j for j in jobs if j.base_entry_id == "single"]
    # the default negative prompt uses {colour}, so "single" expands over colours too
    assert [j.params.steps for j in single] == [3] * 4
    assert {j.negative_prompt for j in single} == {"blurry red", "blurry blue"}
    assert single[0].params.width == 512  # the sd15 preset's default
    assert single[0].params.guidance == 7.5


def test_seeds_are_distinct_and_stable(tmp_path):
    first = _jobs(tmp_path)
    again = _jobs(tmp_path)
    assert [j.seed for j in first] == [j.seed for j in again]
    assert len({j.seed for j in first}) == len(first)


def test_seeds_change_with_date_unless_fixed(tmp_path):
    monday = {j.entry_id + str(j.sample_index): j.seed for j in _jobs(tmp_path, date="2026-11-02")}
    tuesday = {j.entry_id + str(j.sample_index): j.seed for j in _jobs(tmp_path, date="2026-11-03")}
    assert all(monday[k] != tuesday[k] for k in monday)
    fixed = GRID.replace("seed: 5", "seed: 5\nvary_seed_by_date: false")
    monday = [j.seed for j in _jobs(tmp_path, fixed, "2026-11-02")]
    assert monday == [j.seed for j in _jobs(tmp_path, fixed, "2026-11-03")]


def test_adding_an_entry_does_not_shift_other_seeds(tmp_path):
    before = {j.entry_id: j.seed for j in _jobs(tmp_path) if j.sample_index == 0}
    more = GRID.replace("entries:\n", "entries:\n  - id: new\n    prompt: another\n")
    after = {j.entry_id: j.seed for j in _jobs(tmp_path, more) if j.sample_index == 0}
    assert all(after[k] == v for k, v in before.items())
