"""The spec's opt-in for automatic training: off by default, validated like every field, and no
part of the dataset's version (switching it never copies the images again)."""

from __future__ import annotations

import pytest

from diffusion_assets.datasets.load import DatasetSpecError, load_spec
from tests.datasets.helpers import write_spec


def test_auto_train_is_off_by_default(tmp_path):
    assert load_spec(write_spec(tmp_path)).spec.auto_train is False
    assert load_spec(write_spec(tmp_path, auto_train=True)).spec.auto_train is True


def test_auto_train_refuses_anything_but_a_boolean(tmp_path):
    path = write_spec(tmp_path, auto_train="sometimes")
    with pytest.raises(DatasetSpecError) as info:
        load_spec(path)
    assert f"{path}, field 'auto_train'" in str(info.value) and "boolean" in str(info.value)


def test_auto_train_is_not_part_of_the_dataset_version(tmp_path):
    off = load_spec(write_spec(tmp_path, name="a")).spec
    on = load_spec(write_spec(tmp_path, name="b", auto_train=True)).spec
    assert off.version_content() == on.version_content()
