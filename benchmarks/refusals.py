"""How fast, and in how much memory, each hostile input is refused by `validate`, `materialize` and a
sensor + schedule tick, against the same command on a small valid catalog (the baseline) in the same run.

    python benchmarks/refusals.py [--before /path/to/older/checkout] [--out benchmarks/results/refusals.md]

Each command runs in a fresh process; CPU time (user + system) and peak RSS are the command's own
(``wait4``). ``--before`` also runs `validate` of an older checkout on the issue's three examples, with a
time limit, to show what the refusal replaced. Tests assert "refused" and the memory bound; the times
are here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.defs.test_refusals import GOOD, TICK  # noqa: E402
from tests.refusals import KINDS, measured, write_hostile  # noqa: E402

ISSUE_EXAMPLES = ("variables-10M", "alias-bomb", "huge-file")


def _env(project: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DIFFUSION_ASSETS_ROOT=str(project),
        DIFFUSION_ASSETS_PROMPTS=str(project / "prompts"),
        DIFFUSION_ASSETS_DATASETS=str(project / "lora_datasets"),
        DIFFUSION_ASSETS_DATA=str(project / "data"),
        DIFFUSION_ASSETS_MODELS=str(ROOT / "models"),
        DAGSTER_HOME=str(project / "home"),
        HF_HUB_OFFLINE="1",
    )
    return env


def _project(folder: Path, kind: str | None) -> tuple[Path, str]:
    for sub in ("prompts", "lora_datasets", "home"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "prompts" / "good.yaml").write_text(GOOD)
    name = write_hostile(kind, folder / "prompts").stem if kind else "good"
    return folder, name


def _commands(project: Path, name: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "diffusion_assets.cli"]
    return {
        "validate": [*cli, "validate", str(project / "prompts" / f"{name}.yaml")],
        "materialize": [*cli, "materialize", name, "--date", "2026-11-28"],
        "sensor+schedule": [sys.executable, "-c", TICK, *dict.fromkeys(["good", name])],
    }


def _row(label: str, result, base) -> str:
    mb = result.max_rss_bytes / 2**20
    return (
        f"| {label} | {result.returncode} | {result.cpu_seconds:.2f} | {result.cpu_seconds - base.cpu_seconds:+.2f} | "
        f"{result.wall_seconds:.2f} | {mb:.0f} | {mb - base.max_rss_bytes / 2**20:+.0f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before", type=Path, help="an older checkout (with its .venv) to compare validate with"
    )
    parser.add_argument("--before-timeout", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "refusals.md")
    args = parser.parse_args()
    lines = [
        "# Refusing hostile inputs",
        "",
        "Fresh process per command; CPU = user + system seconds of the command, RSS = its peak resident memory "
        "(`wait4`). Δ = minus the baseline, the same command on a small valid catalog (`materialize`: on a name with "
        "no file), i.e. imports and start-up. "
        "Wall time is the shared machine's and varies with load.",
        "",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        base_project, _ = _project(Path(scratch) / "baseline", None)
        commands = _commands(base_project, "good")
        # materialize's baseline refuses a name with no file: the same imports, no generation
        commands["materialize"][-3] = "no_such_catalog"
        baselines = {cmd: measured(argv, _env(base_project)) for cmd, argv in commands.items()}
        for command, base in baselines.items():
            lines += [
                f"## {command}",
                "",
                "| input | exit | CPU s | Δ CPU s | wall s | RSS MB | Δ RSS MB |",
                "|---|---|---|---|---|---|---|",
                _row("baseline", base, base),
            ]
            for kind in KINDS:
                project, name = _project(Path(scratch) / f"{command}-{kind}", kind)
                argv = _commands(project, name)[command]
                if command == "sensor+schedule":
                    (project / "prompts" / "good.yaml").unlink()  # the tick sees the hostile file alone
                    argv = [sys.executable, "-c", TICK, name]
                result = measured(argv, _env(project), timeout=600)
                lines.append(_row(kind, result, base))
                print(lines[-1], flush=True)
            lines.append("")
        if args.before:
            lines += [
                f"## validate in {args.before} (before), limit {args.before_timeout:.0f} s",
                "",
                "| input | outcome | CPU s | RSS MB |",
                "|---|---|---|---|",
            ]
            for kind in ISSUE_EXAMPLES:
                project, name = _project(Path(scratch) / f"before-{kind}", kind)
                argv = [
                    str(args.before / ".venv" / "bin" / "python"),
                    "-m",
                    "diffusion_assets.cli",
                    "validate",
                ]
                argv.append(str(project / "prompts" / f"{name}.yaml"))
                env = {**_env(project), "PYTHONPATH": str(args.before), "PYTHONDONTWRITEBYTECODE": "1"}
                try:
                    result = measured(  # cwd: its own package first on sys.path
                        argv, env, timeout=600, cwd=args.before, kill_after=args.before_timeout
                    )
                    outcome = (
                        "killed at the limit" if result.returncode == -9 else f"exit {result.returncode}"
                    )
                    lines.append(
                        f"| {kind} | {outcome} | {result.cpu_seconds:.1f} | {result.max_rss_bytes / 2**20:.0f} |"
                    )
                except subprocess.TimeoutExpired:
                    lines.append(f"| {kind} | no answer | – | – |")
                print(lines[-1], flush=True)
            lines.append("")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
