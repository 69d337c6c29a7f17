"""Expand a validated catalog into one ``ImageJob`` per image to generate.

Template variables expand into their cartesian product (an X/Y grid as data); each expanded
entry gets the stable id ``<entry id>[<var>=<value>,...]`` and ``images_per_prompt`` samples.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from diffusion_assets.catalog.load import LoadedCatalog, entry_variables
from diffusion_assets.catalog.schema import Catalog, Entry, GenerationParams
from diffusion_assets.files import sha256_bytes
from diffusion_assets.models.presets import Preset
from diffusion_assets.seeds import SEED_DERIVATION_VERSION, derive_seed


@dataclass(frozen=True)
class ResolvedParams:
    """Every parameter that shapes an image, after catalog defaults and preset defaults."""

    preset: Preset
    scheduler: str
    steps: int
    guidance: float
    true_cfg_scale: float | None
    width: int
    height: int
    negative_prompt: str
    images_per_prompt: int
    refiner_switch: float | None
    control_image: Path | None
    controlnet_scale: float | None
    lora_path: Path | None
    lora_scale: float | None

    def batch_signature(self) -> tuple:
        """Images that share this signature may share a batch (prompts and seeds may differ)."""
        return (
            self.preset.name,
            self.scheduler,
            self.steps,
            self.guidance,
            self.true_cfg_scale,
            self.width,
            self.height,
            self.refiner_switch,
            self.controlnet_scale,
            str(self.lora_path),
            self.lora_scale,
        )


_NOT_IDENTITY = {"preset", "images_per_prompt", "control_image", "lora_path"}
"""Parameters left out of an image's recipe: the preset is named separately; how many samples an
entry has does not shape any one of them (raising it adds images, it does not replace them); files
(control image, LoRA, local weights) are identified by their content hashes, not by absolute paths,
so a project moved or cloned elsewhere keeps every image id."""


@dataclass(frozen=True)
class ImageJob:
    """One image to generate: what, with which seed, and where it comes from in the catalog."""

    catalog_name: str
    entry_id: str
    base_entry_id: str
    sample_index: int
    prompt: str
    negative_prompt: str
    template_vars: dict[str, str] = field(hash=False)
    seed: int
    date: str
    params: ResolvedParams

    def recipe(self, weights_hashes: dict[str, str | None]) -> dict:
        """The identity of the image: everything that shapes its pixels, plus where it belongs."""
        p = self.params
        return {
            "catalog": self.catalog_name,
            "entry_id": self.entry_id,
            "sample_index": self.sample_index,
            "date": self.date,
            "seed": self.seed,
            "seed_derivation": SEED_DERIVATION_VERSION,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "params": {k: str(v) for k, v in asdict(p).items() if k not in _NOT_IDENTITY},
            # a local folder is named by its pipeline class here and by its weights hash below
            "preset": f"local:{p.preset.pipeline_class}" if p.preset.local else p.preset.name,
            "weights": weights_hashes,
        }

    def image_id(self, weights_hashes: dict[str, str | None]) -> str:
        """A stable id: the same recipe (and weights) always gives the same id."""
        blob = json.dumps(self.recipe(weights_hashes), sort_keys=True).encode()
        return sha256_bytes(blob)[:20]


def merged_params(catalog: Catalog, entry: Entry) -> GenerationParams:
    """The entry's parameters with unset ones taken from the catalog's ``defaults``."""
    defaults = catalog.defaults.model_dump()
    own = entry.model_dump(include=set(GenerationParams.model_fields))
    return GenerationParams(**{k: own[k] if own[k] is not None else defaults[k] for k in defaults})


def resolve_params(params: GenerationParams, base_dir: Path, preset: Preset) -> ResolvedParams:

    def pick(value, default):
        return default if value is None else value

    return ResolvedParams(
        preset=preset,
        scheduler=params.scheduler or "default",
        steps=pick(params.steps, preset.steps),
        guidance=float(pick(params.guidance, preset.guidance)),
        true_cfg_scale=params.true_cfg_scale,
        width=pick(params.width, preset.width),
        height=pick(params.height, preset.height),
        negative_prompt=params.negative_prompt or "",
        images_per_prompt=pick(params.images_per_prompt, 1),
        refiner_switch=pick(params.refiner_switch, preset.refiner_switch) if preset.refiner_id else None,
        control_image=(base_dir / params.control_image).resolve() if params.control_image else None,
        controlnet_scale=pick(params.controlnet_scale, preset.controlnet_scale)
        if preset.controlnet_id
        else None,
        lora_path=(base_dir / params.lora.path).resolve() if params.lora else None,
        lora_scale=params.lora.scale if params.lora else None,
    )


def expand_entry(catalog: Catalog, entry: Entry) -> list[tuple[str, dict[str, str]]]:
    """``(expanded id, variable values)`` for each combination of the entry's variables."""
    variables = entry_variables(catalog, entry)
    if not variables:
        return [(entry.id, {})]
    names = list(variables)
    out = []
    for values in itertools.product(*(variables[n] for n in names)):
        combo = dict(zip(names, values, strict=True))
        out.append((f"{entry.id}[{','.join(f'{k}={v}' for k, v in combo.items())}]", combo))
    return out


def expand_catalog(loaded: LoadedCatalog, date: str) -> list[ImageJob]:
    """All images of one (catalog, date) partition, in catalog order."""
    catalog = loaded.catalog
    jobs = []
    for entry in catalog.entries:
        merged = merged_params(catalog, entry)
        params = resolve_params(merged, loaded.path.parent, loaded.preset_for(merged))
        base_seed = catalog.seed if entry.seed is None else entry.seed
        seed_date = date if catalog.vary_seed_by_date else None
        for expanded_id, combo in expand_entry(catalog, entry):
            for sample in range(params.images_per_prompt):
                jobs.append(
                    ImageJob(
                        catalog_name=loaded.name,
                        entry_id=expanded_id,
                        base_entry_id=entry.id,
                        sample_index=sample,
                        prompt=entry.prompt.format(**combo),
                        negative_prompt=params.negative_prompt.format(**combo),
                        template_vars=combo,
                        seed=derive_seed(base_seed, expanded_id, sample, seed_date),
                        date=date,
                        params=params,
                    )
                )
    return jobs
