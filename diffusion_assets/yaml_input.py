"""Reading a user-written YAML file (a catalog, a dataset spec) up to the schema check, and the
issue and error types that name the file, the entry and the field of each problem, with a hint.

Every file is read within fixed bounds, so a hostile or broken file is refused in well under a second
with memory that does not grow with the input:

- at most ``MAX_FILE_BYTES`` bytes, read from a regular file only (a FIFO or ``/dev/zero`` never ends);
- at most ``MAX_DEPTH`` nested collections;
- at most ``MAX_NODES`` nodes and ``MAX_CHARS`` scalar characters *as if every alias were expanded*, so
  an alias bomb ("billion laughs": ``&a [*b, *b, ...]`` nested nine deep) is refused from its events,
  before any object is built;
- a mapping that names the same key twice is an error (YAML 1.2 §3.2.1.1 requires unique keys; PyYAML
  keeps the last value silently); ``<<`` merge keys still override what they merge;
- dates and times stay the text they were written as (``2026-02-30`` is a string for the schema to
  judge, never a raw ``ValueError`` from the YAML library), and an integer too long to convert is a
  YAML error with its line.
"""

from __future__ import annotations

import os
import reprlib
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, SequenceNode

MAX_FILE_BYTES = 1 << 20
"""1 MiB: catalogs and specs are hand-written; a larger one is split into several files."""
MAX_DEPTH = 32
"""Nested collections; a catalog needs 5 (entries → entry → lora → ...)."""
MAX_NODES = 100_000
"""Scalars and collections after expanding aliases. A 10,000-entry catalog of ``{id, prompt}`` has about
50,000; PyYAML builds about 100,000 nodes a second, so this bound keeps the largest accepted file under
one second of parsing."""
MAX_CHARS = 4 * MAX_FILE_BYTES
"""Scalar characters after expanding aliases."""

_MERGE_TAG = "tag:yaml.org,2002:merge"

# libyaml's parser when PyYAML was built with it (the same safe subset, several times faster)
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """The safe loader, with dates kept as text and over-long integers reported with their line."""

    def construct_text(self, node) -> str:
        return self.construct_scalar(node)

    def construct_bounded_int(self, node) -> int:
        try:
            return self.construct_yaml_int(node)
        except ValueError as exc:  # Python refuses int() of more than 4,300 digits
            raise ConstructorError(None, None, f"integer cannot be read: {exc}", node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_text)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_bounded_int)


@dataclass(frozen=True)
class InputIssue:
    """One problem in a user-written file: the file, the entry (if any), the field, and the fix."""

    file: str
    entry: str | None
    field: str | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.entry:
            where.append(self.entry)
        if self.field:
            where.append(f"field '{self.field}'")
        text = f"{', '.join(where)}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class InputError(ValueError):
    """A user-written file failed validation; ``issues`` lists every problem found."""

    what = "input file"

    def __init__(self, issues: list[InputIssue]):
        self.issues = issues
        noun = "problem" if len(issues) == 1 else "problems"
        super().__init__(f"{len(issues)} {noun} in {self.what}:\n" + "\n".join(f"  - {i}" for i in issues))


class InputTooLarge(ValueError):
    """A file is over one of the reader's bounds; the message names the bound and the figure."""

    def __init__(
        self, message: str, hint: str = "split it into smaller files, and write each value out once"
    ):
        super().__init__(message)
        self.hint = hint


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 4
_SHOWN.maxlevel = 2


def shown(value: object) -> str:
    """``repr`` cut to about 80 characters and two levels: safe on any input, however large."""
    return _SHOWN.repr(value)


def read_bounded(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them.

    Raises:
        OSError: it cannot be read.
        InputTooLarge: it is not a regular file, or is larger than ``limit``.
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise InputTooLarge(
            "not a regular file (a device, FIFO or folder is never read)", "point it at a regular file"
        )
    if info.st_size > limit:
        raise InputTooLarge(f"the file has {info.st_size:,} bytes; input files may have at most {limit:,}")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew since stat
        raise InputTooLarge(f"the file has more than {limit:,} bytes; input files may have at most {limit:,}")
    return data


def check_bounds(data: bytes) -> None:
    """Walk the parser's events once and refuse a document over ``MAX_DEPTH``, ``MAX_NODES`` or
    ``MAX_CHARS`` (aliases counted as what they stand for) before any node is built.

    Raises:
        InputTooLarge: naming the bound, with the line where it was crossed.
        yaml.YAMLError: the text is not YAML (the loader would report the same).
    """
    sizes: dict[str, tuple[int, int]] = {}  # anchor → expanded (nodes, chars)
    stack: list[list] = []  # open collections: [anchor, nodes, chars]
    open_anchors: set[str] = set()
    nodes = chars = 0
    aliased = False
    for event in yaml.parse(data, Loader=_BASE_LOADER):
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise InputTooLarge(_where(event, f"collections nested more than {MAX_DEPTH} deep"))
            stack.append([event.anchor, 1, 0])
            if event.anchor:
                open_anchors.add(event.anchor)
            size = (1, 0)
        elif isinstance(event, CollectionEndEvent):
            anchor, n, c = stack.pop()
            if anchor:
                sizes[anchor] = (n, c)
                open_anchors.discard(anchor)
            if stack:
                stack[-1][1] += n
                stack[-1][2] += c
            continue
        elif isinstance(event, ScalarEvent):
            size = (1, len(event.value))
            if event.anchor:
                sizes[event.anchor] = size
        elif isinstance(event, AliasEvent):
            if event.anchor in open_anchors:
                raise InputTooLarge(
                    _where(event, f"alias *{event.anchor} refers to a collection that contains it")
                )
            size = sizes.get(event.anchor, (1, 0))  # an undefined alias: the loader reports it
        else:
            continue
        if stack and not isinstance(event, CollectionStartEvent):
            stack[-1][1] += size[0]
            stack[-1][2] += size[1]
        nodes, chars = nodes + size[0], chars + size[1]
        aliased = aliased or isinstance(event, AliasEvent)
        if nodes > MAX_NODES or chars > MAX_CHARS:
            what = f"{MAX_NODES:,} values" if nodes > MAX_NODES else f"{MAX_CHARS:,} characters of text"
            why = " once aliases are expanded (an alias bomb?)" if aliased else ""
            raise InputTooLarge(_where(event, f"more than {what}{why}"))


def _where(event, message: str) -> str:
    mark = event.start_mark
    return f"{message}, at line {mark.line + 1}, column {mark.column + 1}" if mark else message


def _duplicate_keys(loader: _Loader, root) -> None:
    """Raise on the first mapping that names a key twice (merged ``<<`` keys may be overridden)."""
    seen_nodes: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, MappingNode):
            first: dict = {}
            for key_node, value_node in node.value:
                todo.append(value_node)
                if key_node.tag == _MERGE_TAG or isinstance(key_node, MappingNode | SequenceNode):
                    continue
                key = loader.construct_object(key_node)
                try:
                    earlier = first.get(key)
                except TypeError:  # an unhashable key: the constructor reports it
                    continue
                if earlier is None:
                    first[key] = key_node.start_mark
                else:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found key {shown(key)} twice (first at line {earlier.line + 1}); YAML keys must be "
                        "unique, and the later value would silently win",
                        key_node.start_mark,
                    )
        elif isinstance(node, SequenceNode):
            todo.extend(node.value)


def parse_yaml(data: bytes):
    """The Python value of a YAML document within the bounds above.

    Raises:
        InputTooLarge: over a bound.
        yaml.YAMLError: not YAML, a key given twice, an over-long integer.
    """
    check_bounds(data)
    loader = _Loader(data)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _duplicate_keys(loader, root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def read_yaml_mapping(
    path: Path, fail: Callable[[str, str | None], Exception], hint: str
) -> tuple[bytes, dict]:
    """The file's bytes and its YAML mapping.

    ``fail(message, hint)`` builds the exception raised when the file cannot be read, is over a bound
    (``MAX_FILE_BYTES`` and the others above), is not valid YAML (the message gives line and column)
    or is not a mapping (``hint`` says what is expected).
    """
    try:
        data = read_bounded(Path(path))
        raw = parse_yaml(data)
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}", None) from exc
    except InputTooLarge as exc:
        raise fail(f"refused: {exc}", exc.hint) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise fail(f"not valid YAML{where}: {getattr(exc, 'problem', exc)}", None) from exc
    if not isinstance(raw, dict):
        raise fail("the file is not a YAML mapping", hint)
    return data, raw


def load_error_message(path: Path, exc: Exception) -> str:
    """What to log for a user file that failed to load: a validation error already names the file,
    entry and field; anything else gets the file name and the exception."""
    if isinstance(exc, InputError):
        return str(exc)
    return f"{path}: {type(exc).__name__}: {exc} (not loaded; the other files carry on)"
