"""A1111 infotext: the ``parameters`` text AUTOMATIC1111 writes into a PNG and every reader parses.

Format (A1111 ``modules/infotext_utils.py``, ``parse_generation_parameters``): the prompt's lines,
then the negative prompt's lines, the first of them prefixed ``Negative prompt: ``, then one line of
``Key: value`` pairs joined by ``, ``. A value containing ``,``, ``:`` or a newline is written as a
JSON string (A1111's ``quote``), so no value spills into the next field.

There is no escape for a prompt line that starts with ``Negative prompt:`` (A1111 starts the
negative prompt there; sd-parsers splits on the marker anywhere), so catalog validation refuses
prompts containing it (``catalog.checks``). Readers strip each prompt line (A1111) and the whole
text; CLIP's tokenizer collapses whitespace the same way, so only the text here is affected.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffusion_assets import __version__
from diffusion_assets.models.hashing import short_hash

NEGATIVE_MARKER = "Negative prompt:"


def quote(value: object) -> str:
    """A1111's ``infotext_utils.quote``: the value as text, JSON-quoted if it holds ``,``, ``:`` or a
    newline (``json.dumps(..., ensure_ascii=False)``, as A1111 writes it)."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def a1111_parameters(row: dict) -> str:
    """Render a manifest row as A1111 ``parameters`` text."""
    pairs = [
        ("Steps", row["steps"]),
        ("Sampler", row["sampler"]),
        ("CFG scale", row["guidance_scale"]),
        ("Seed", row["seed"]),
        ("Size", f"{row['width']}x{row['height']}"),
        ("Model hash", short_hash(row["model_weights_hash"])),
        ("Model", row["preset"]),
    ]
    if row.get("refiner_model_id"):
        pairs += [("Refiner", row["refiner_model_id"]), ("Refiner switch at", row["refiner_switch"])]
    if row.get("lora_path"):
        pairs.append(
            ("Lora hashes", f"{Path(row['lora_path']).stem}: {short_hash(row['lora_weights_hash'])}")
        )
    pairs.append(("Version", f"diffusion_assets {__version__}"))
    settings = ", ".join(f"{key}: {quote(value)}" for key, value in pairs)
    lines = [row["prompt"]]
    if row.get("negative_prompt"):
        lines.append(f"{NEGATIVE_MARKER} {row['negative_prompt']}")
    lines.append(settings)
    return "\n".join(lines)
