"""The cap on images per partition: computed from list lengths (never expanded), named in the error with
the file, the entry, the count and the cap, and raised per catalog with `max_images`."""

from __future__ import annotations

import pytest

from diffusion_assets.catalog.expand import expand_catalog
from diffusion_assets.catalog.load import CatalogError, catalog_images, load_catalog
from diffusion_assets.catalog.schema import MAX_IMAGES_DEFAULT, MAX_IMAGES_LIMIT
from tests.refusals import variable_grid


def _write(tmp_path, text):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_ten_million_images_are_refused_naming_file_entry_count_and_cap(tmp_path):
    path = _write(tmp_path, variable_grid(variables=5, values=25))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    [issue] = info.value.issues
    assert (issue.file, issue.entry, issue.field) == (str(path), "entry 'grid' (entries[0])", "variables")
    assert (
        "expands to 9,765,625 images" in issue.message and f"cap of {MAX_IMAGES_DEFAULT:,}" in issue.message
    )
    assert "max_images" in issue.hint


def test_images_per_prompt_counts_in(tmp_path):
    path = _write(tmp_path, variable_grid(variables=1, values=20, images_per_prompt=600))
    with pytest.raises(CatalogError, match=r"expands to 12,000 images \(20 v0 × images_per_prompt 600\)"):
        load_catalog(path)


def test_entries_under_the_cap_that_add_up_over_it(tmp_path):
    entries = "".join(f"  - {{id: e{i}, prompt: 'a {{c}} circle'}}\n" for i in range(11))
    text = (
        "variables: {c: ["
        + ", ".join(f"c{j}" for j in range(1000))
        + "]}\ndefaults: {model: shapes-render}\nentries:\n"
        + entries
    )
    path = _write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    [issue] = info.value.issues
    assert (issue.entry, issue.field) == (None, "max_images")
    assert "makes 11,000 images per partition (11 entries; largest: e0 1,000" in issue.message


def test_the_cap_is_raised_per_catalog_and_counts_what_expands(tmp_path):
    text = "max_images: 20000\n" + variable_grid(variables=2, values=120)
    path = _write(tmp_path, text)
    loaded = load_catalog(path)
    assert catalog_images(loaded.catalog) == len(expand_catalog(loaded, "2026-11-28")) == 14_400


def test_unused_variables_do_not_count(tmp_path):
    text = "variables: {unused: [" + ", ".join(f"u{j}" for j in range(20_000)) + "]}\n"
    text += (
        "defaults: {model: shapes-render}\nentries: [{id: a, prompt: a red circle on a black background}]\n"
    )
    path = _write(tmp_path, text)
    assert catalog_images(load_catalog(path).catalog) == 1


def test_the_cap_itself_is_bounded(tmp_path):
    path = _write(tmp_path, f"max_images: {MAX_IMAGES_LIMIT + 1}\n" + variable_grid(variables=1, values=2))
    with pytest.raises(CatalogError, match="field 'max_images'"):
        load_catalog(path)
