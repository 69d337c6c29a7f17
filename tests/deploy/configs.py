"""Shared by the launcher tests: the shipped config files, and a way to misspell one of their keys."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT_INSTANCE = ROOT / ".dagster_home" / "dagster.yaml"


def load(relative: str) -> dict:
    return yaml.safe_load((ROOT / relative).read_text())


def misspelled(config: dict, path: str, wrong: str) -> dict:
    """A copy of ``config`` with the key at ``path`` (dots between keys, ``[i]`` for list items)
    renamed to ``wrong``."""
    config = copy.deepcopy(config)
    *parents, last = path.split(".")
    node = config
    for part in parents:
        name, _, index = part.partition("[")
        node = node[name] if not index else node[name][int(index.rstrip("]"))]
    node[wrong] = node.pop(last)
    return config
