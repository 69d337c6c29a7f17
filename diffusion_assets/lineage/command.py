"""``diffusion-assets lineage``: trace an image forward or an adapter/dataset back, as text or JSON.

Exit status: 0 traced; 1 nothing matches (or a bad argument); 2 the image file was MODIFIED after
generation (its sha256, or with PNG metadata only its pixels, differ from the record).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from diffusion_assets import paths
from diffusion_assets.lineage import LineageError
from diffusion_assets.lineage.forward import forward_lineage
from diffusion_assets.lineage.render import render_forward, render_reverse
from diffusion_assets.lineage.reverse import reverse_lineage
from diffusion_assets.lineage.store import build_index, index_state, open_store

EXIT_NOT_FOUND = 1
EXIT_MODIFIED = 2


def refresh_index(data_root: Path) -> str:
    """Build the index unless it is up to date; a line saying what happened."""
    if index_state(data_root) == "fresh":
        return f"lineage index up to date: {data_root / 'lineage.duckdb'}"
    start = time.perf_counter()
    path = build_index(data_root)
    with open_store(data_root) as store:
        counts = {
            t: store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("images", "members", "adapters", "evaluations")
        }
    summary = ", ".join(f"{n} {t}" for t, n in counts.items())
    return f"wrote {path} ({summary}) in {time.perf_counter() - start:.1f} s"


def run_lineage(args: argparse.Namespace) -> int:
    """The ``lineage`` subcommand (arguments: see ``diffusion_assets.cli``)."""
    data_root = Path(args.data) if args.data else paths.data_root()
    given = [x for x in (args.target, args.adapter, args.dataset) if x is not None]
    reverse = args.target is None
    if args.index:
        print(refresh_index(data_root), file=sys.stderr if args.json else sys.stdout)
        if not given:
            return 0
    if len(given) != 1:
        print(
            "give one of: a PNG file, image id or sha256; --adapter ID; --dataset NAME[@VERSION]",
            file=sys.stderr,
        )
        return EXIT_NOT_FOUND
    try:
        with open_store(data_root, progress=lambda m: print(m, file=sys.stderr)) as store:
            if reverse:
                doc = reverse_lineage(store, adapter_id=args.adapter, dataset=args.dataset, limit=args.limit)
            else:
                doc = forward_lineage(store, args.target)
    except LineageError as exc:
        print(f"lineage: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    if args.json:
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(render_reverse(doc) if reverse else render_forward(doc))
    modified = doc.get("integrity", {}).get("status") == "modified"
    return EXIT_MODIFIED if modified else 0
