"""``diffusion-assets``: the project's command line, for what lives outside a Dagster run.

diffusion-assets validate [FILE ...]           check catalogs and dataset specs before committing them
diffusion-assets presets                       list model presets
diffusion-assets import-kohya FILE --model P   convert kohya prompt lines into a catalog
diffusion-assets sync-partitions               register prompts/ catalogs as partitions
diffusion-assets materialize CATALOG [--date] [--end-date]  generate partitions into the Dagster instance
diffusion-assets demo                          the README's main job (the whole chain)
diffusion-assets lineage PNG|ID|SHA [--json]   trace an image (or --adapter/--dataset back to images)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from diffusion_assets import paths
from diffusion_assets.catalog.load import CatalogError, load_catalog


def _validate(args: argparse.Namespace) -> int:
    from diffusion_assets.datasets.load import DatasetSpecError  # noqa: PLC0415

    failed = 0
    if args.files:
        files = [Path(f) for f in args.files]
    else:  # both folders: a file whose name cannot be a partition key fails too
        files = []
        for folder in (paths.prompts_dir(), paths.dataset_specs_dir()):
            scan = paths.scan_catalog_files(folder)
            files += scan.files
            for problem in scan.problems:
                failed += 1
                print(f"FAIL {problem}", file=sys.stderr)
    for path in files:
        try:
            summary, warnings = _validate_file(path)
        except (CatalogError, DatasetSpecError) as exc:
            failed += 1
            print(f"FAIL {path}\n{exc}", file=sys.stderr)
            continue
        print(f"ok   {path}: {summary}")
        for warning in warnings:
            print(f"warn {warning}", file=sys.stderr)
    return 1 if failed else 0


def _validate_file(path: Path) -> tuple[str, list]:
    """Validate one catalog or dataset spec: ``(what it holds, warnings)``. A file is a dataset spec when
    it sits in the datasets folder or its mapping has ``sources:`` and no ``entries:``."""
    from diffusion_assets.datasets.load import load_spec  # noqa: PLC0415

    if _is_dataset_spec(path):
        spec = load_spec(path, check_sources=True).spec
        return f"dataset spec over {', '.join(s.catalog for s in spec.sources)}", []
    loaded = load_catalog(path)
    from diffusion_assets.catalog.load import catalog_images  # noqa: PLC0415

    return f"{catalog_images(loaded.catalog):,} images per partition", loaded.warnings


def _is_dataset_spec(path: Path) -> bool:
    from diffusion_assets.yaml_input import parse_yaml, read_bounded  # noqa: PLC0415

    try:
        if path.resolve().parent == paths.dataset_specs_dir().resolve():
            return True
        raw = parse_yaml(read_bounded(path))
    except Exception:  # noqa: BLE001 - unreadable files get the catalog loader's named error
        return False
    return isinstance(raw, dict) and "sources" in raw and "entries" not in raw


def _presets(_: argparse.Namespace) -> int:
    from diffusion_assets.models.presets import PRESETS  # noqa: PLC0415

    for preset in PRESETS.values():
        print(f"{preset.name:24} {preset.model_id:45} {preset.description}")
    return 0


def _import_kohya(args: argparse.Namespace) -> int:
    from diffusion_assets.catalog.kohya import dump_catalog, import_kohya  # noqa: PLC0415
    from diffusion_assets.files import atomic_write_text  # noqa: PLC0415

    out = Path(args.out) if args.out else None
    try:
        text = dump_catalog(import_kohya(Path(args.file), args.model))
        # validate the converted catalog where it will live (a scratch file beside it, so relative model
        # and file paths resolve as they will), before anything appears in prompts/
        folder = out.parent if out else Path(args.file).parent
        with tempfile.TemporaryDirectory(dir=folder if folder.is_dir() else None) as scratch:
            probe = Path(scratch) / (out.name if out else "imported.yaml")
            probe.write_text(text, encoding="utf-8")
            load_catalog(probe)
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 1
    if out is None:
        print(text, end="")
        return 0
    atomic_write_text(out, text)
    print(f"wrote {out}")
    return 0


def _sync(_: argparse.Namespace) -> int:
    from diffusion_assets.dagster_cli import sync_partitions  # noqa: PLC0415

    added = sync_partitions()
    print(f"registered catalogs: {', '.join(added) or '(none new)'}")
    return 0


def _materialize(args: argparse.Namespace) -> int:
    from diffusion_assets.dagster_cli import materialize_catalog  # noqa: PLC0415

    return 0 if materialize_catalog(args.catalog, args.date, end_date=args.end_date) else 1


def _demo(args: argparse.Namespace) -> int:
    from diffusion_assets.dagster_cli import run_demo  # noqa: PLC0415

    return 0 if run_demo(args.date) else 1


def _lineage(args: argparse.Namespace) -> int:
    from diffusion_assets.lineage.command import run_lineage  # noqa: PLC0415

    return run_lineage(args)


INSTANCE_COMMANDS = ("sync-partitions", "materialize", "demo")
"""Commands that record runs in a Dagster instance (``DAGSTER_HOME``)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diffusion-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "validate",
        help="validate catalogs and dataset specs (default: every file in prompts/ and lora_datasets/)",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="a catalog or a dataset spec")
    p.set_defaults(func=_validate)
    sub.add_parser("presets", help="list model presets").set_defaults(func=_presets)
    p = sub.add_parser("import-kohya", help="convert a kohya prompt file into a catalog")
    p.add_argument("file")
    p.add_argument("--model", required=True, help="preset or local folder for the catalog's defaults")
    p.add_argument("--out", help="catalog path to write (validated first); default: print")
    p.set_defaults(func=_import_kohya)
    sub.add_parser("sync-partitions", help="add a partition per catalog in prompts/").set_defaults(func=_sync)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    p = sub.add_parser("materialize", help="generate one catalog × date partition (or a date range)")
    p.add_argument("catalog")
    p.add_argument("--date", default=today)
    p.add_argument(
        "--end-date", help="generate every date from --date to this one (inclusive), 10 dates per run"
    )
    p.set_defaults(func=_materialize)
    p = sub.add_parser(
        "demo",
        help="the main job: generate the demo catalogs, caption, build a dataset, train and evaluate a LoRA",
    )
    p.add_argument("--date", default=today)
    p.set_defaults(func=_demo)
    p = sub.add_parser(
        "lineage",
        help="trace an image forward, or an adapter or dataset back to its images",
        description="Exit status: 0 traced, 1 nothing matches, 2 the image was modified after generation.",
    )
    p.add_argument("target", nargs="?", help="a PNG file, an image id, or a file or pixel sha256")
    p.add_argument("--adapter", metavar="ID", help="reverse lineage of an adapter")
    p.add_argument("--dataset", metavar="NAME[@VERSION]", help="reverse lineage of a dataset (all versions)")
    p.add_argument("--limit", type=int, default=20, help="member images listed in reverse lineage")
    p.add_argument("--json", action="store_true", help="print the JSON document instead of text")
    p.add_argument("--index", action="store_true", help="build <data>/lineage.duckdb (if stale) first")
    p.add_argument("--data", help="data root (default: DIFFUSION_ASSETS_DATA or <root>/data)")
    p.set_defaults(func=_lineage)
    args = parser.parse_args(argv)
    if args.command in INSTANCE_COMMANDS and not os.environ.get("DAGSTER_HOME"):
        # the project's own instance, as `make` sets it: never Dagster's "DAGSTER_HOME is not set"
        home = paths.project_root() / ".dagster_home"
        home.mkdir(exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
        print(f"DAGSTER_HOME is not set: using the project's instance {home}", file=sys.stderr)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
