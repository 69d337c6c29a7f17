"""Captions of the shapes world, and their parse back to attributes.

A caption reads ``"a red circle on a gray background"``; a styled image adds a trigger word for LoRA
training, ``"a red circle on a gray background, in sks outline style"``. ``parse_caption`` inverts
``caption`` exactly, so prompts in a catalog can be scored by the checker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Rare tokens as style triggers, as in DreamBooth (Ruiz et al. 2023): words the base captions never use.
STYLE_PHRASES: dict[str, str] = {
    "outlined": "in sks outline style",
    "striped": "in zwx stripe style",
}
_PHRASE_STYLES = {phrase: style for style, phrase in STYLE_PHRASES.items()}
_ALIASES = {"grey": "gray", "colour": "color"}

_CAPTION = re.compile(
    r"^\s*an?\s+(?P<colour>\w+)\s+(?P<shape>\w+)\s+on\s+an?\s+(?P<background>\w+)\s+background"
    r"(?:\s*,\s*(?P<phrase>in\s+\w+\s+\w+\s+style))?\s*\.?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ShapeAttrs:
    """What an image of the world shows: a colour, a shape, a background, and a drawing style."""

    colour: str
    shape: str
    background: str
    style: str = "filled"


def caption(attrs: ShapeAttrs) -> str:
    """The canonical caption of ``attrs``."""
    text = f"a {attrs.colour} {attrs.shape} on a {attrs.background} background"
    if attrs.style != "filled":
        text += f", {STYLE_PHRASES[attrs.style]}"
    return text


def parse_caption(text: str) -> ShapeAttrs:
    """Read attributes back from a caption; raise ``ValueError`` naming the text when it does not parse.

    Accepts upper case, "an", "grey", a trailing full stop and extra spaces. Words are returned as
    written (lower-cased); whether they belong to the world's palette is the caller's question.
    """
    match = _CAPTION.match(text)
    if match is None:
        raise ValueError(
            f"cannot parse caption {text!r}: expected 'a <colour> <shape> on a <background> background' "
            f"optionally followed by ', {STYLE_PHRASES['outlined']}' or ', {STYLE_PHRASES['striped']}'"
        )
    words = {k: _ALIASES.get(v.lower(), v.lower()) for k, v in match.groupdict().items() if v}
    style = "filled"
    if "phrase" in words:
        phrase = " ".join(words.pop("phrase").split())
        if phrase not in _PHRASE_STYLES:
            raise ValueError(f"unknown style phrase {phrase!r} in {text!r}; known: {sorted(_PHRASE_STYLES)}")
        style = _PHRASE_STYLES[phrase]
    return ShapeAttrs(words["colour"], words["shape"], words["background"], style)
