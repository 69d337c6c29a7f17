"""A catalog's ``lora.path`` checked before any model loads: a safetensors file whose modules exist,
with the same shapes, in the base model.

Only safetensors is ever loaded: pickle files (``.bin``, ``.ckpt``, ``.pt``, ``.pth``) can run code when
unpickled. The adapter's tensor names are read from its header and mapped to the base model's modules
the way diffusers maps them when it loads a LoRA (``diffusers/loaders/lora_conversion_utils.py``):

- diffusers / peft names: ``unet.<module>.lora.down.weight``, ``unet.<module>.lora_A.weight`` (also
  ``transformer.``, ``text_encoder.``, ``text_encoder_2.`` and an adapter name after ``lora_A``);
- kohya names: ``lora_unet_<module with _ for .>.lora_down.weight`` (``lora_te_``, ``lora_te1_``,
  ``lora_te2_`` for the text encoders), with ``.alpha``;
- kohya names in the original checkpoints' layout (``lora_unet_input_blocks_…`` for SD/SDXL,
  ``lora_unet_double_blocks_…`` for Flux), which diffusers converts on load: only their family is
  checked here.

A module the base does not have is dropped by peft with a warning, and a shape that differs fails deep
inside the run; both are errors here, naming the catalog, the entry and the field.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from diffusion_assets.catalog.model_files import NotSafetensors, read_json, safetensors_header, weight_shapes

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle")

CONVERT_HINT = (
    "only safetensors adapters are loaded (a pickle can run code when it is read); convert it once on a "
    'machine you trust: python -c "import torch; from safetensors.torch import save_file; '
    "save_file(torch.load('{name}', map_location='cpu', weights_only=True), '{stem}.safetensors')\", then "
    "point lora.path at the .safetensors file."
)

_DOTTED = re.compile(
    r"^(?:base_model\.model\.)?(?P<component>unet|transformer|text_encoder_2|text_encoder)\.(?P<module>.+?)"
    r"(?:\.processor\.(?P<proc>to_q|to_k|to_v|to_out)_lora\.(?P<role>down|up)"  # the attention-processor era
    r"|\.(?P<role2>lora\.down|lora\.up|lora_linear_layer\.down|lora_linear_layer\.up|lora_A|lora_B)"
    r"(?:\.[A-Za-z0-9_-]+)?)\.weight$"
)
_KOHYA = re.compile(
    r"^lora_(?P<component>unet|te1|te2|te|transformer)_(?P<module>.+?)\.(?P<role>lora_down|lora_up)\.weight$"
)
_IGNORED = re.compile(r"(\.alpha|\.dora_scale|lora_magnitude_vector(\.[A-Za-z0-9_-]+)?)$")
_ORIGINAL_LAYOUT = {
    "input_blocks_": ("sd", "sdxl"),
    "middle_block_": ("sd", "sdxl"),
    "output_blocks_": ("sd", "sdxl"),
    "double_blocks_": ("flux",),
    "single_blocks_": ("flux",),
}
_KOHYA_COMPONENT = {"te": "text_encoder", "te1": "text_encoder", "te2": "text_encoder_2"}


@dataclass
class LoraFit:
    """How an adapter's modules match a base model: counts and a few examples of each problem."""

    modules: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    wrong_family: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """Base components without safetensors weights to compare with (``.bin`` only): not checked."""

    @property
    def fits(self) -> bool:
        return self.modules > 0 and not (self.missing or self.mismatched or self.wrong_family or self.unknown)

    def summary(self, base: str) -> str:
        if not self.modules and not self.unknown:
            return "it holds no LoRA tensors, so it would change nothing"
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} name modules {base} does not have (e.g. {self.missing[0]})")
        if self.mismatched:
            parts.append(
                f"{len(self.mismatched)} have other shapes than {base}'s (e.g. {self.mismatched[0]})"
            )
        if self.wrong_family:
            parts.append(
                f"{len(self.wrong_family)} use another model family's layout (e.g. {self.wrong_family[0]})"
            )
        if self.unknown:
            parts.append(
                f"{len(self.unknown)} tensors have names no LoRA loader reads (e.g. {self.unknown[0]})"
            )
        return f"of the adapter's {self.modules} modules, " + "; ".join(parts)


def pickle_problem(path: Path) -> str | None:
    """Why ``path`` cannot be loaded as a safetensors adapter, or None when its header reads."""
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return f"'{path.name}' is a pickle file ({path.suffix}), not safetensors"
    try:
        safetensors_header(path)
    except NotSafetensors as exc:
        return f"'{path.name}' is not a safetensors file: {exc}"
    except OSError as exc:
        return f"'{path.name}' cannot be read: {exc.strerror}"
    return None


@functools.lru_cache(maxsize=32)
def _base_modules(folder: Path, component: str) -> tuple[dict[str, tuple], dict[str, str]] | None:
    shapes = weight_shapes(folder / component)
    if shapes is None:
        return None
    modules = {
        name.removesuffix(".weight"): shape for name, shape in shapes.items() if name.endswith(".weight")
    }
    if component.startswith("text_encoder"):
        # transformers 5 saves CLIPTextModel weights without the `text_model.` prefix that the loaded
        # module (and every LoRA for it) names: accept both spellings
        modules |= {
            (n.removeprefix("text_model.") if n.startswith("text_model.") else f"text_model.{n}"): shape
            for n, shape in list(modules.items())
        }
    return modules, {name.replace(".", "_"): name for name in modules}


def lora_fit(adapter: Path, base_folder: Path, family: str) -> LoraFit:
    """Compare every LoRA module of ``adapter`` with the base model in ``base_folder``.

    A down (A) matrix is ``[rank, in_features, ...]`` and an up (B) matrix ``[out_features, rank, ...]``;
    both must agree with the base weight ``[out_features, in_features, ...]``.
    """
    header = safetensors_header(adapter)
    listed = read_json(base_folder / "model_index.json") or {}
    fit = LoraFit()
    seen: set[tuple[str, str]] = set()
    for name, meta in header.items():
        if name == "__metadata__" or _IGNORED.search(name):
            continue
        match = _DOTTED.match(name) or _KOHYA.match(name)
        if match is None:
            fit.unknown.append(name)
            continue
        component = _KOHYA_COMPONENT.get(match["component"], match["component"])
        if component == "unet" and family == "flux":
            component = "transformer"
        module = match["module"]
        if match.groupdict().get("proc"):
            module = f"{module}.{match['proc']}" + (".0" if match["proc"] == "to_out" else "")
        role = match["role"] or match.groupdict().get("role2")
        down = role in ("down", "lora.down", "lora_linear_layer.down", "lora_A", "lora_down")
        if (component, module) not in seen:
            seen.add((component, module))
            fit.modules += 1
        base = _base_modules(base_folder, component)
        if base is None and component in listed:  # a part of the pipeline whose weights are not safetensors
            if component not in fit.unreadable:
                fit.unreadable.append(component)
            continue
        if name.startswith("lora_"):
            prefix = next((p for p in _ORIGINAL_LAYOUT if module.startswith(p)), None)
            if prefix is not None:
                if family not in _ORIGINAL_LAYOUT[prefix]:
                    fit.wrong_family.append(name)
                continue
            module = base[1].get(module, module) if base else module
        if base is None or module not in base[0]:
            fit.missing.append(f"{component}.{module}")
            continue
        shape, own = base[0][module], tuple(meta.get("shape", ()))
        axis = 1 if down else 0  # in_features of a down matrix, out_features of an up matrix
        if len(own) < 2 or len(shape) < 2 or own[axis] != shape[axis]:
            fit.mismatched.append(f"{name}: adapter {list(own)} vs base {list(shape)}")
    fit.missing = list(dict.fromkeys(fit.missing))
    return fit


@functools.lru_cache(maxsize=64)
def _cached_fit(path: Path, _mtime_ns: int, folder: Path, family: str) -> LoraFit:
    return lora_fit(path, folder, family)


def lora_problems(path: Path, preset) -> tuple[list[tuple[str, str]], list[str]]:
    """``(errors as (message, hint), warnings)`` for a catalog's ``lora.path`` with ``preset``.

    A pickle or a file that is not safetensors is an error; so is an adapter whose modules the base does
    not have or with other shapes. When the base model is not on this machine, the check cannot be made
    and a warning says where it looked. Results are cached per file version: every entry of a grid names
    the same adapter.
    """
    from diffusion_assets.catalog.model_files import model_folder  # noqa: PLC0415

    problem = pickle_problem(path)
    if problem:
        return [(problem, CONVERT_HINT.format(name=path.name, stem=path.stem))], []
    found = model_folder(preset)
    if found.folder is None:
        return [], [
            f"could not check the adapter against {preset.name}: its weights are not on this machine "
            f"(looked in {found.where()}); a mismatch would fail only when the model loads"
        ]
    fit = _cached_fit(path.resolve(), path.stat().st_mtime_ns, found.folder, preset.family)
    if not fit.fits:
        hint = f"use an adapter trained on {preset.name} ({preset.family}), or set `model:` to its base"
        return [
            (
                f"the adapter does not fit {preset.name}: {fit.summary(preset.name)}",
                hint + _trained_for(path) + ".",
            )
        ], []
    if fit.unreadable:
        where = ", ".join(str(found.folder / c) for c in fit.unreadable)
        return [], [f"could not check the adapter's modules against {where}: no safetensors weights there"]
    return [], []


def _trained_for(path: Path) -> str:
    """What an adapter's header says it was trained on (kohya's and this project's keys)."""
    meta = safetensors_header(path).get("__metadata__") or {}
    said = [f"{k}={meta[k]}" for k in ("ss_base_model_version", "diffusion_assets.base_model") if meta.get(k)]
    return f" (its header says {', '.join(said)})" if said else ""
