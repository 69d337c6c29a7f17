"""Captioners: one interface over a transformers model, the project's tiny model, and the prompt itself.

``load_captioner(spec, models_dir, project_root)`` returns a ``Captioner`` whose
``caption(images, prompts)`` gives one caption per image. Model captions use greedy decoding, so the
same images in the same batches give the same captions on every call. ``describe()`` is what a
manifest row records about the captioner.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from diffusion_assets.captioning.spec import (
    TINY_PRESET,
    CaptionerMode,
    CaptionerSpec,
    PromptKind,
    resolve_preset,
    template_fields,
)
from diffusion_assets.models.hashing import folder_hash
from diffusion_assets.models.loading import ModelNotAvailableError, locate, resolve_device, resolve_dtype
from diffusion_assets.models.presets import is_local_spec
from diffusion_assets.paths import local_model_path

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, ProcessorMixin

_PREFIX_MODEL_TYPES = frozenset({"blip"})
"""Model types whose caption continues a text prefix (their ``generate`` returns prefix + caption)."""
_DEFAULT_PROMPT: dict[PromptKind, str] = {"prefix": "a", "chat": "Describe this image in one sentence."}
_DEFAULT_MAX_NEW_TOKENS: dict[PromptKind, int] = {"prefix": 30, "chat": 60}
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")


class Captioner(ABC):
    """Captions a batch of images. ``prompts`` are the generation prompts, one per image."""

    mode: CaptionerMode
    captioner_id: str
    weights_hash: str | None
    device: str | None = None
    """Where the model runs (``cuda:N``, ``mps``, ``cpu``); None when no model runs (prompt mode)."""

    @abstractmethod
    def caption(
        self,
        images: Sequence[Image.Image | None],
        prompts: Sequence[str],
        fields: Sequence[Mapping[str, object]] | None = None,
    ) -> list[str]:
        """One caption per image. ``fields`` are optional manifest fields per image (prompt mode)."""

    def describe(self) -> dict[str, object]:
        """Manifest columns that say which captioner wrote a caption, and how."""
        return {
            "captioner_mode": self.mode,
            "captioner_id": self.captioner_id,
            "captioner_weights_hash": self.weights_hash,
        }


class PromptCaptioner(Captioner):
    """The caption is the generation prompt, through ``template`` (e.g. ``"{prompt}, {entry_id}"``)."""

    def __init__(self, template: str = "{prompt}"):
        self.template = template
        self.fields = template_fields(template)
        self.mode = "prompt"
        self.captioner_id = f"prompt:{template}"
        self.weights_hash = None

    def caption(
        self,
        images: Sequence[Image.Image | None],
        prompts: Sequence[str],
        fields: Sequence[Mapping[str, object]] | None = None,
    ) -> list[str]:
        """Fill the template for each prompt; images are not looked at (they may be None)."""
        if fields is not None and len(fields) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(fields)} rows of fields")
        captions = []
        for i, prompt in enumerate(prompts):
            values = {**(fields[i] if fields is not None else {}), "prompt": prompt}
            missing = [name for name in self.fields if name not in values]
            if missing:
                raise KeyError(
                    f"caption template {self.template!r} uses {missing}, which row {i} does not have "
                    f"(it has: {sorted(values)})"
                )
            captions.append(self.template.format(**values))
        return captions

    def describe(self) -> dict[str, object]:
        return super().describe() | {"captioner_template": self.template}


class ModelCaptioner(Captioner):
    """A transformers image-text-to-text model and its processor, decoding greedily."""

    def __init__(
        self,
        model: PreTrainedModel,
        processor: ProcessorMixin,
        *,
        mode: CaptionerMode,
        captioner_id: str,
        model_id: str,
        path: Path,
        weights_hash: str,
        kind: PromptKind,
        prompt: str,
        max_new_tokens: int,
        batch_size: int,
        device: str,
        dtype: torch.dtype,
    ):
        self.model, self.processor = model, processor
        self.mode, self.captioner_id, self.model_id = mode, captioner_id, model_id
        self.path, self.weights_hash = path, weights_hash
        self.kind, self.prompt, self.max_new_tokens = kind, prompt, max_new_tokens
        self.batch_size, self.device, self.dtype = batch_size, device, dtype

    def caption(
        self,
        images: Sequence[Image.Image | None],
        prompts: Sequence[str],
        fields: Sequence[Mapping[str, object]] | None = None,
    ) -> list[str]:
        """Caption ``images`` in batches of ``batch_size``; ``prompts`` are only checked for length."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        if any(image is None for image in images):
            raise ValueError(f"captioner {self.captioner_id} needs every image; got None")
        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = [image.convert("RGB") for image in images[start : start + self.batch_size]]
            captions += self._caption_batch(batch)
        return captions

    def _caption_batch(self, batch: list[Image.Image]) -> list[str]:
        import torch  # noqa: PLC0415

        # 1. inputs: a prefix the caption continues (BLIP), or an instruction in the chat template
        if self.kind == "prefix":
            text = [self.prompt] * len(batch) if self.prompt else None
            inputs = self.processor(images=batch, text=text, return_tensors="pt")
        else:
            messages = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]}
            ]
            chat = self.processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = self.processor(
                text=[chat] * len(batch), images=[[im] for im in batch], return_tensors="pt", padding=True
            )
        inputs = {
            k: v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in inputs.items()
            if isinstance(v, torch.Tensor)
        }
        # 2. greedy decoding: deterministic, and what captioning papers report
        with torch.no_grad():
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1
            )
        # 3. a chat model's output repeats the prompt; BLIP's output is prefix + caption, kept whole
        if self.kind == "chat":
            out = out[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(out, skip_special_tokens=True)
        return [clean_caption(t) for t in texts]

    def describe(self) -> dict[str, object]:
        return super().describe() | {
            "captioner_model_id": self.model_id,
            "captioner_path": str(self.path),
            "captioner_prompt": self.prompt,
            "captioner_max_new_tokens": self.max_new_tokens,
            "captioner_batch_size": self.batch_size,
            "captioner_dtype": str(self.dtype).removeprefix("torch."),
        }


def clean_caption(text: str) -> str:
    """Collapse whitespace and drop spaces before punctuation (word-level tokenizers decode ``x , y``)."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))


def load_captioner(spec: CaptionerSpec, models_dir: Path, project_root: Path) -> Captioner:
    """Build the captioner ``spec`` asks for; model weights are located as generation's are.

    Raises:
        ModelNotAvailableError: the weights are not on this machine; the message names the id, where
            it looked and the command that fetches (or trains) them.
        ValueError: a model whose prompting style is unknown (neither BLIP-like nor a chat template).
    """
    if spec.mode == "prompt":
        return PromptCaptioner(spec.template)
    # 1. where the weights are: a preset, a hub id (mirror, then HF cache) or a local folder
    preset = resolve_preset(spec)
    model_id = preset.model_id if preset else (spec.model or TINY_PRESET)
    local = preset.local if preset else is_local_spec(model_id)
    if local:
        _require_local_folder(local_model_path(model_id, project_root, models_dir))
    path = locate(
        model_id,
        models_dir=models_dir,
        project_root=project_root,
        local=local,
        revision=spec.revision,
        allow_download=spec.allow_download,
    )
    # 2. how to prompt it
    kind = preset.kind if preset else _prompt_kind(path)
    prompt = spec.prompt if spec.prompt is not None else (preset.prompt if preset else _DEFAULT_PROMPT[kind])
    max_new = spec.max_new_tokens or (preset.max_new_tokens if preset else _DEFAULT_MAX_NEW_TOKENS[kind])
    # 3. load (heavy imports only here)
    from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: PLC0415

    device = resolve_device(spec.device)
    dtype = resolve_dtype(spec.dtype, device)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(device).eval()
    processor = AutoProcessor.from_pretrained(path)
    if kind == "chat":
        processor.tokenizer.padding_side = "left"  # decoder-only batches must end at the same position
    return ModelCaptioner(
        model,
        processor,
        mode=spec.mode,
        captioner_id=preset.name if preset else model_id,
        model_id=model_id,
        path=path,
        weights_hash=folder_hash(path),
        kind=kind,
        prompt=prompt,
        max_new_tokens=max_new,
        batch_size=spec.batch_size,
        device=device,
        dtype=dtype,
    )


def _require_local_folder(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise ModelNotAvailableError(
            f"Captioner folder {path} does not exist or has no config.json.\n  Fix: train it with "
            f"`python -m diffusion_assets.captioning.train_tiny --out {path}` (a few CPU minutes), "
            "or fix the path in the captioning config."
        )


def _prompt_kind(path: Path) -> PromptKind:
    """``prefix`` for BLIP, ``chat`` for a processor with a chat template; anything else is an error."""
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    if config.get("model_type") in _PREFIX_MODEL_TYPES:
        return "prefix"
    from transformers import AutoProcessor  # noqa: PLC0415

    if getattr(AutoProcessor.from_pretrained(path), "chat_template", None):
        return "chat"
    raise ValueError(
        f"{path}: model type {config.get('model_type')!r} is neither BLIP-like nor a chat model with a "
        f"chat template; supported: {sorted(_PREFIX_MODEL_TYPES)} and chat vision-language models"
    )
