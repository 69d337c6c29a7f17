"""Captioning a partition: idempotent, and no caption is ever deleted (retired, then restorable)."""

from __future__ import annotations

import shutil

from diffusion_assets.captioning.captioner import PromptCaptioner, load_captioner
from diffusion_assets.captioning.partition import RETIRED_KIND, _settings, caption_partition
from diffusion_assets.captioning.spec import CaptionerSpec
from diffusion_assets.generation.partition import RunInfo
from diffusion_assets.lineage.forward import forward_lineage
from diffusion_assets.lineage.store import open_store
from diffusion_assets.manifests import captions as cm
from diffusion_assets.manifests import generation as gm
from diffusion_assets.manifests.io import partition_path, read_table, write_table
from tests.datasets.helpers import CATALOG, DATE, pattern, write_partition

KEYS = {"catalog": CATALOG, "date": DATE}


def _caption(data, run_id, captioner=None):
    run = RunInfo(run_id, f"{CATALOG}|{DATE}", "captions-v1")
    return caption_partition(CATALOG, DATE, data, captioner or PromptCaptioner(), run)


def _ids(data, kind):
    table = read_table(partition_path(data, kind, KEYS))
    return sorted(r["image_id"] for r in table.to_pylist()) if table is not None else []


def _retire_first(data, rows):  # what a catalog edit does to the generation manifests
    write_table(partition_path(data, gm.KIND + "_retired", KEYS), rows[:1], gm.SCHEMA)
    write_table(partition_path(data, gm.KIND, KEYS), rows[1:], gm.SCHEMA)


def test_recaptioning_is_idempotent(tmp_path):
    data = tmp_path / "data"
    write_partition(data, [(f"img{i}", f"a pattern {i}", pattern(i)) for i in range(3)])
    first = _caption(data, "cap-1")
    again = _caption(data, "cap-2")
    assert (again.captioned, again.kept) == (0, 3)
    assert again.rows == first.rows and again.manifest_sha256 == first.manifest_sha256


def test_a_retired_images_caption_is_retired_not_deleted_and_lineage_still_shows_it(tmp_path):
    data = tmp_path / "data"
    rows = write_partition(data, [(f"img{i}", f"a pattern {i}", pattern(i)) for i in range(3)])
    _caption(data, "cap-1")
    _retire_first(data, rows)
    _caption(data, "cap-2")
    assert _ids(data, cm.KIND) == ["img1", "img2"]
    assert _ids(data, RETIRED_KIND) == ["img0"]
    with open_store(data, use_index=False) as store:
        doc = forward_lineage(store, "img0")
    assert doc["image"]["retired"]
    assert [(c["caption"], c["retired"], c["dagster_run_id"]) for c in doc["captions"]] == [
        ("a pattern 0", True, "cap-1")
    ]


def test_a_restored_image_gets_its_caption_back_without_captioning_again(tmp_path):
    data = tmp_path / "data"
    rows = write_partition(data, [(f"img{i}", f"a pattern {i}", pattern(i)) for i in range(3)])
    first = _caption(data, "cap-1")
    _retire_first(data, rows)
    _caption(data, "cap-2")
    write_table(partition_path(data, gm.KIND, KEYS), rows, gm.SCHEMA)  # the edit is undone
    back = _caption(data, "cap-3")
    assert (back.captioned, back.kept) == (0, 3)
    assert back.rows == first.rows
    assert _ids(data, RETIRED_KIND) == []


def test_another_captioners_captions_are_retired_and_come_back_with_it(tmp_path):
    data = tmp_path / "data"
    write_partition(data, [(f"img{i}", f"a pattern {i}", pattern(i)) for i in range(2)])
    plain = _caption(data, "cap-1")
    styled = _caption(data, "cap-2", PromptCaptioner(template="{prompt}, sks"))
    assert styled.captioned == 2 and _ids(data, RETIRED_KIND) == ["img0", "img1"]
    back = _caption(data, "cap-3")
    assert back.captioned == 0 and back.rows == plain.rows
    assert [r["caption"] for r in read_table(partition_path(data, RETIRED_KIND, KEYS)).to_pylist()] == [
        "a pattern 0, sks",
        "a pattern 1, sks",
    ]


def test_a_captions_identity_does_not_depend_on_where_the_project_lives(captioner_folder, tmp_path):
    folder, _ = captioner_folder
    identities = []
    for place in ("a", "b/c"):
        root = tmp_path / place
        moved = shutil.copytree(folder, root / "models" / "shapes-captioner")
        spec = CaptionerSpec(mode="tiny", device="cpu", dtype="float32")
        captioner = load_captioner(spec, models_dir=root, project_root=root)
        assert captioner.describe()["captioner_path"] == str(moved)  # still where it was loaded from
        described = captioner.describe()
        identities.append(
            (described["captioner_id"], described["captioner_weights_hash"], _settings(captioner))
        )
    assert identities[0] == identities[1]


def test_every_caption_row_says_where_its_captioner_ran(captioner_folder, tmp_path):
    folder, _ = captioner_folder
    data = tmp_path / "data"
    write_partition(data, [(f"img{i}", f"a red circle {i}", pattern(i)) for i in range(2)])
    assert {r["device"] for r in _caption(data, "cap-1").rows} == {None}  # prompt mode: no model ran
    spec = CaptionerSpec(mode="tiny", device="cpu", dtype="float32")
    model = load_captioner(spec, models_dir=folder.parent.parent, project_root=folder.parent.parent)
    assert {r["device"] for r in _caption(data, "cap-2", model).rows} == {"cpu"}
    assert {r["device"] for r in read_table(partition_path(data, cm.KIND, KEYS)).to_pylist()} == {"cpu"}
