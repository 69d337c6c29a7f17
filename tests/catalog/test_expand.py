"""Template expansion and per-image seeds."""

from __future__ import annotations

from diffusion_assets.catalog.expand import expand_catalog
from diffusion_assets.catalog.load import load_catalog
from tests.catalog.helpers import write_adapter

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


WEIGHTS = {"base": "w" * 64}


def _ids(jobs) -> dict[tuple[str, int], str]:
    return {(j.entry_id, j.sample_index): j.image_id(WEIGHTS) for j in jobs}


def test_more_samples_per_prompt_add_images_and_keep_the_existing_ids(tmp_path):
    two = _ids(_jobs(tmp_path))
    three = _ids(_jobs(tmp_path, GRID.replace("images_per_prompt: 2", "images_per_prompt: 3")))
    assert len(three) == len(two) * 3 // 2
    assert {k: three[k] for k in two} == two


LOCAL = """
defaults: {model: ../models/tiny, steps: 2, width: 32, height: 32}
entries:
  - id: a
    prompt: "a red circle"
    lora: {path: ../adapters/style.safetensors, scale: 0.8}
"""


def _project(root):
    (root / "models" / "tiny").mkdir(parents=True)
    (root / "models" / "tiny" / "model_index.json").write_text(
        '{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}'
    )
    write_adapter(
        root / "adapters" / "style.safetensors", {"unet.down_blocks.0.to_k.lora.down.weight": (4, 8)}
    )
    (root / "prompts").mkdir()
    return root / "prompts"


def test_image_ids_do_not_depend_on_where_the_project_lives(tmp_path):
    ids = []
    for checkout in ("one", "elsewhere/two"):
        prompts = _project(tmp_path / checkout)
        job = _jobs(prompts, LOCAL)[0]
        assert job.params.lora_path.is_relative_to(tmp_path / checkout)  # paths still resolve locally
        ids.append(job.image_id(WEIGHTS | {"lora": "l" * 64}))
    assert ids[0] == ids[1]


def test_image_ids_follow_the_content_of_the_files(tmp_path):
    job = _jobs(_project(tmp_path), LOCAL)[0]
    hashes = WEIGHTS | {"lora": "l" * 64}
    assert job.image_id(hashes) != job.image_id(hashes | {"lora": "m" * 64})
    assert job.image_id(hashes) != job.image_id(hashes | {"base": "v" * 64})


def test_an_entry_can_clear_the_default_negative_prompt(tmp_path):
    text = GRID.replace("    steps: 3\n", '    steps: 3\n    negative_prompt: ""\n')
    single = [j for j in _jobs(tmp_path, text) if j.base_entry_id == "single"]
    assert [(j.entry_id, j.negative_prompt, j.template_vars) for j in single] == [
        ("single", "", {}),
        ("single", "", {}),
    ]  # two samples of one prompt, not an expansion over the default's {colour}
