"""The Dockerfile and its build context, checked without a Docker engine: a CUDA base, the same
pins as the Makefile and pyproject.toml, every COPY source in the context, and a context without
the data root, the environment or the instance's state (docker-py's own .dockerignore rules)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib

from docker.utils.build import exclude_paths
from packaging.requirements import Requirement

from tests.deploy.configs import ROOT, load


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _context(root) -> set[str]:
    return set(exclude_paths(str(root), (root / ".dockerignore").read_text().splitlines()))


def _makefile_torch_pin() -> str:
    """The version the Makefile installs (``TORCH_VERSION``, the CPU pin and the CUDA builds alike)."""
    return re.search(r"^TORCH_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)


def test_base_is_cuda_and_torch_is_pinned_as_the_makefile_pins_it():
    steps = instructions()
    args = dict(arg.split("=", 1) for op, arg in steps if op == "ARG" and "=" in arg)
    assert args["CUDA_IMAGE"].startswith("nvidia/cuda:") and "runtime" in args["CUDA_IMAGE"]
    assert [arg for op, arg in steps if op == "FROM"][-1] == "${CUDA_IMAGE}"
    assert args["TORCH_VERSION"] == _makefile_torch_pin()
    assert any('"torch==${TORCH_VERSION}"' in arg for op, arg in steps if op == "RUN")


def test_entry_point_is_the_code_server_of_the_workspace_location():
    cmd = json.loads([arg for op, arg in instructions() if op == "CMD"][-1])
    assert cmd[:3] == ["dagster", "code-server", "start"]
    options = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    location = load("workspace.yaml")["load_from"][0]["python_module"]
    assert options["--module-name"] == location["module_name"]
    assert options["--location-name"] == location["location_name"]


def test_every_copy_source_is_in_the_build_context():
    context = _context(ROOT)
    for op, arg in instructions():
        if op != "COPY" or arg.startswith("--from"):
            continue
        *sources, _ = arg.split()
        for source in sources:
            if source == ".":
                continue
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source in context, f"COPY {source}: excluded by .dockerignore"


def test_context_leaves_out_data_environment_and_instance_state(tmp_path):
    # a checkout as a user has it after `make demo`: tracked files plus what running it leaves
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in tracked.split():
        if (ROOT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, tmp_path / name)
    left_behind = [
        "data/images/shapes_demo/2026-11-28/x.png",
        "data/manifests/generation/catalog=shapes_demo/date=2026-11-28/part-0.parquet",
        ".venv/bin/python",
        ".dagster_home/history/runs.db",
        ".dagster_home/storage/run/compute_logs/x.out",
        "diffusion_assets/__pycache__/paths.cpython-311.pyc",
        "diffusion_assets.egg-info/PKG-INFO",
    ]
    for name in left_behind:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    context = _context(tmp_path)
    assert not [name for name in left_behind if name in context]
    for kept in [
        "pyproject.toml",
        "diffusion_assets/definitions.py",
        "models/shapes-tiny/model_index.json",
        "prompts/shapes_demo.yaml",
        "deploy/k8s/gpu_run.yaml",
        "deploy/constraints.txt",
        "workspace.yaml",
    ]:
        assert kept in context, kept


def test_constraints_pin_every_dependency_within_pyproject_and_torch_as_the_makefile():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for line in (ROOT / "deploy/constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    needed = project["dependencies"] + project["optional-dependencies"]["deploy"]
    problems = []
    for spec in map(Requirement, needed):
        name = spec.name.lower().replace("_", "-")
        if name not in pins:
            problems.append(f"{spec.name}: no pin")
        elif not spec.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{spec.name}=={pins[name]} is outside {spec.specifier}")
    assert not problems, (
        f"deploy/constraints.txt is out of date ({problems}); regenerate it as its header says"
    )
    assert pins["torch"] == _makefile_torch_pin()
