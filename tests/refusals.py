"""Hostile inputs of each kind that exhausted the machine, and a probe that runs a command on one in a
fresh process and reports its exit status, CPU time and peak memory.

Shared by the tests (which assert "refused" and a memory bound, never a time) and by
``benchmarks/refusals.py`` (which prints the times).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ENTRY = "defaults: {model: shapes-render}\nentries: [{id: a, prompt: a red circle on a black background}]\n"


def alias_bomb(levels: int = 9, width: int = 9, target: str = "description: {bomb}") -> str:
    """ "Billion laughs": each anchor a list of ``width`` aliases of the previous one, nested ``levels``
    deep: ``width ** levels`` strings once expanded (387,420,489 for 9 × 9), used where ``target`` says."""
    anchors = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    anchors += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    use = target.format(bomb=f"*l{levels - 1}")
    return f"seed: 1\nx-anchors: [{', '.join(anchors)}]\n{use}\n" + ENTRY


def mapping_bomb(levels: int = 9, width: int = 9) -> str:
    """The same growth through mappings whose values alias the previous mapping (inside ``variables``)."""
    anchors = ["&m0 {" + ", ".join(f"k{j}: lol" for j in range(width)) + "}"]
    anchors += [
        f"&m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(width)) + "}" for i in range(1, levels)
    ]
    return "variables: {v: [" + ", ".join(anchors) + "]}\n" + ENTRY


def deep_nesting(depth: int = 200_000) -> str:
    return "variables: {v: " + "[" * depth + "x" + "]" * depth + "}\n" + ENTRY


def variable_grid(variables: int = 5, values: int = 25, images_per_prompt: int = 1) -> str:
    """``values ** variables`` prompts (25 ** 5 = 9,765,625), each with ``images_per_prompt`` samples."""
    names = [f"v{i}" for i in range(variables)]
    lines = [f"  {n}: [{', '.join(f'{n}x{j}' for j in range(values))}]" for n in names]
    prompt = " ".join("{" + n + "}" for n in names)
    return (
        "variables:\n"
        + "\n".join(lines)
        + f"\ndefaults: {{model: shapes-render, images_per_prompt: {images_per_prompt}}}\n"
        f"entries: [{{id: grid, prompt: '{prompt}'}}]\n"
    )


def many_entries(n: int = 30_000) -> str:
    return "defaults: {model: shapes-render}\nentries:\n" + "".join(
        f"  - {{id: e{i}, prompt: x}}\n" for i in range(n)
    )


def huge_file(path: Path, megabytes: int = 300) -> None:
    """A valid-looking catalog padded with comment lines to ``megabytes`` (sparse-free: really written)."""
    line = b"# " + b"x" * 1021 + b"\n"
    with open(path, "wb") as handle:
        handle.write(ENTRY.encode())
        for _ in range(megabytes * 1024):
            handle.write(line)


def huge_scalar(megabytes: int = 64) -> str:
    return "description: '" + "x" * (megabytes << 20) + "'\n" + ENTRY


def write_hostile(kind: str, folder: Path, name: str | None = None) -> Path:
    """Write one hostile catalog of ``kind`` (a key of ``KINDS``) into ``folder``; its path."""
    path = folder / f"{name or kind.replace('-', '_')}.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    make = KINDS[kind]
    if kind == "huge-file":
        huge_file(path)
    elif kind == "device":
        os.symlink("/dev/zero", path)
    else:
        path.write_text(make())
    return path


KINDS: dict[str, Callable] = {
    "alias-bomb": alias_bomb,
    "alias-bomb-variables": lambda: alias_bomb(target="variables: {{v: {bomb}}}"),
    "mapping-bomb": mapping_bomb,
    "deep-nesting": deep_nesting,
    "variables-10M": variable_grid,
    "images-per-prompt": lambda: variable_grid(variables=2, values=100, images_per_prompt=10_000),
    "many-entries": many_entries,
    "huge-scalar": huge_scalar,
    "huge-file": huge_file,
    "device": lambda: None,
}
"""Every kind of input that exhausted the machine before (issue 10, item 1)."""


@dataclass(frozen=True)
class Probe:
    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float
    """User + system CPU time of the command (its own, not this process's)."""
    wall_seconds: float
    max_rss_bytes: int
    """Peak resident memory of the command (``wait4``'s ``ru_maxrss``)."""


_WRAPPER = """
import os, signal, sys
limit = float(os.environ.pop("PROBE_KILL_AFTER", "0"))
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
if limit:
    signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.setitimer(signal.ITIMER_REAL, limit)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)  # -9 when killed by SIGKILL
sys.stderr.write(f"\\nPROBE {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss * 1024} {code}\\n")
"""


def measured(
    args: list[str], env: dict | None = None, timeout: float = 300, cwd: Path = ROOT, kill_after: float = 0
) -> Probe:
    """Run ``args`` in a fresh process under a tiny wrapper that reads the command's own CPU time and peak
    RSS through ``wait4``; its exit status and output too. ``kill_after`` seconds (0: never) the wrapper
    kills the command and still reports its figures (exit status -9). On a ``timeout`` the whole process
    group is killed and ``subprocess.TimeoutExpired`` raised."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _WRAPPER, *args],
        cwd=cwd,
        env={**(env or os.environ), "PROBE_KILL_AFTER": str(kill_after)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    wall = time.perf_counter() - start
    head, _, tail = stderr.rpartition("\nPROBE ")
    cpu, rss, code = tail.split()
    return Probe(int(code), stdout, head, float(cpu), wall, int(rss))
