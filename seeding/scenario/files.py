"""Scenario files: reading the YAML, validating it strictly, and resolving ``extends``.

Every error names the file and line, what is wrong, the value found and the fix:
``scenarios/diverse.yaml:14: steps[3].mix.type: unknown value 'virtaul'; expected one of ...``.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.resources
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NonNegativeInt,
    Tag,
    ValidationError,
)

from seeding.errors import ScenarioError
from seeding.scenario.kinds import NAMES

#: The names a scenario uses for the factories.
FACTORY_NAMES = NAMES


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone offset, e.g. 2025-11-06T14:05:57-05:00")
    return value


#: A scenario time: always with its offset, so no run depends on the machine's time zone.
AwareTime = Annotated[datetime, AfterValidator(_require_offset)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Window(_Strict):
    """A time window in which the rows of a step (or a scenario) are created."""

    start: AwareTime = Field(alias="from")
    end: AwareTime = Field(alias="to")


class ClockSpec(_Strict):
    """The scenario clock: what "now" is, and the default creation window."""

    now: AwareTime
    window: Window | None = None


class Pick(_Strict):
    """A related row chosen from a set: every row of a kind, or of a named group, filtered."""

    any: str | None = None
    ref: str | None = None
    where: dict[str, Any] = Field(default_factory=dict)


Relation = str | Pick | None


class CreateStep(_Strict):
    """Create rows of one factory."""

    create: str
    count: NonNegativeInt | None = None
    ref: str | None = None
    traits: tuple[str, ...] = ()
    fields: dict[str, Any] = Field(default_factory=dict)
    mix: dict[str, dict[str, int | str]] = Field(default_factory=dict)
    each: dict[str, list[Any]] = Field(default_factory=dict)
    relations: dict[str, Relation] = Field(default_factory=dict, alias="with")
    window: Window | None = None
    scale: bool = True


class UpdateStep(_Strict):
    """Change rows made earlier (in this scenario or one it extends)."""

    update: str | tuple[str, ...]
    set: dict[str, Any] = Field(default_factory=dict)
    regenerate: tuple[str, ...] = ()
    traits: tuple[str, ...] = ()
    fields: dict[str, Any] = Field(default_factory=dict)


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "create" in value:
            return "create"
        if "update" in value:
            return "update"
    return None


Step = Annotated[
    Annotated[CreateStep, Tag("create")] | Annotated[UpdateStep, Tag("update")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs a `create:` or an `update:` key",
    ),
]


class ScenarioSpec(_Strict):
    """One scenario file, as written (before ``extends`` is resolved)."""

    description: str
    extends: str | None = None
    seed: int = 0
    tiles: int | None = Field(default=None, ge=1)
    clock: ClockSpec | None = None
    steps: tuple[Step, ...] = ()
    expect: dict[str, str] = Field(default_factory=dict)


class Scenario(BaseModel):
    """A scenario with its ``extends`` chain resolved: the ancestors first, itself last."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    path: Path
    chain: tuple[tuple[str, Path, ScenarioSpec], ...]

    @property
    def spec(self) -> ScenarioSpec:
        """Return the scenario's own file."""
        return self.chain[-1][2]

    @property
    def seed(self) -> int:
        """Return the default seed (the scenario's own)."""
        return self.spec.seed

    @property
    def tiles(self) -> int | None:
        """Return how many copies of its steps the scenario is at scale 1 (None: not tiled)."""
        return self.spec.tiles

    @property
    def expect(self) -> dict[str, str]:
        """Return the scenario's own targets (an ancestor's exact figures do not bind it)."""
        return dict(self.spec.expect)

    @property
    def clock(self) -> ClockSpec | None:
        """Return the nearest clock in the chain (the scenario's own first)."""
        for _, _, spec in reversed(self.chain):
            if spec.clock is not None:
                return spec.clock
        return None


# --- locating --------------------------------------------------------------------------------


def shipped_dir() -> Path:
    """Return the folder of the scenarios shipped with the package."""
    return Path(str(importlib.resources.files("scenarios")))


def shipped() -> dict[str, Path]:
    """Return the shipped scenarios by name."""
    return {path.stem: path for path in sorted(shipped_dir().glob("*.yaml"))}


def _is_file(path: Path) -> bool:
    """Return whether ``path`` is a file; a name the system refuses (too long, ...) is not."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def locate(name_or_path: str, relative_to: Path | None = None) -> Path:
    """Return the file of a scenario given by name (shipped) or by path.

    Raises:
        ScenarioError: When no such scenario exists; lists the shipped ones.

    """
    candidate = Path(name_or_path)
    looks_like_path = candidate.suffix in (".yaml", ".yml") or "/" in name_or_path
    if looks_like_path:
        for base in filter(None, (relative_to, Path.cwd())):
            full = (base / candidate) if not candidate.is_absolute() else candidate
            if _is_file(full):
                return full.resolve()
        raise ScenarioError(f"{name_or_path}: no such scenario file; check the path")
    known = shipped()
    if relative_to is not None:
        sibling = relative_to / f"{name_or_path}.yaml"
        if _is_file(sibling):
            return sibling.resolve()
    if name_or_path in known:
        return known[name_or_path]
    close = difflib.get_close_matches(name_or_path, known, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    shown = repr(name_or_path) if len(name_or_path) <= 60 else repr(name_or_path[:57] + "...")
    raise ScenarioError(
        f"unknown scenario {shown}{hint}; shipped scenarios: {', '.join(known)}; "
        "or give a path to a .yaml file"
    )


# --- reading ---------------------------------------------------------------------------------


def display(path: Path) -> str:
    """Return a scenario file's path as messages show it (relative to the working folder)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        try:
            return f"scenarios/{path.relative_to(shipped_dir())}"
        except ValueError:
            return str(path)


def _node_at(node: yaml.Node | None, loc: Sequence[str | int]) -> yaml.Node | None:
    """Return the YAML node at a validation location, as deep as it goes."""
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (k, v) for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == part
                ),
                None,
            )
            if match is None:
                return node
            node = match[1] if not isinstance(part, str) or match[1] is not None else match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _key_node(node: yaml.Node | None, loc: Sequence[str | int]) -> yaml.Node | None:
    """Return the node of the key named by the last part of ``loc`` (for unknown keys)."""
    parent = _node_at(node, loc[:-1])
    if isinstance(parent, yaml.MappingNode):
        for key, _ in parent.value:
            if isinstance(key, yaml.ScalarNode) and key.value == loc[-1]:
                return key
    return parent


def format_loc(loc: Sequence[str | int]) -> str:
    """Return a validation location as ``steps[3].mix.type``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_ALLOWED_KEYS: dict[str, tuple[str, ...]] = {
    "": tuple(f.alias or n for n, f in ScenarioSpec.model_fields.items()),
    "create": tuple(f.alias or n for n, f in CreateStep.model_fields.items()),
    "update": tuple(f.alias or n for n, f in UpdateStep.model_fields.items()),
    "clock": tuple(ClockSpec.model_fields),
    "window": ("from", "to"),
    "pick": tuple(Pick.model_fields),
}


def _allowed_for(loc: Sequence[str | int], root: Any) -> tuple[str, ...]:
    parents = [p for p in loc[:-1] if isinstance(p, str)]
    if not parents:
        return _ALLOWED_KEYS[""]
    last = parents[-1]
    if last in ("window",):
        return _ALLOWED_KEYS["window"]
    if last == "clock":
        return _ALLOWED_KEYS["clock"]
    if last == "with" or (len(parents) >= 2 and parents[-2] == "with"):
        return _ALLOWED_KEYS["pick"]
    if parents[0] == "steps":
        step = root.get("steps", [])[loc[1]] if isinstance(root, dict) else {}
        return _ALLOWED_KEYS["update" if isinstance(step, dict) and "update" in step else "create"]
    return ()


class ScenarioFileError(ScenarioError):
    """A scenario file is malformed; the message names its file and line."""


def error_at(path: Path, node: yaml.Node | None, where: str, message: str) -> ScenarioFileError:
    """Return a ScenarioError for a place in a file: ``file:line: where: message``."""
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    prefix = f"{display(path)}{line}: "
    return ScenarioFileError(prefix + (f"{where}: " if where else "") + message)


def _first_error(
    path: Path, root_node: yaml.Node, data: Any, error: ValidationError
) -> ScenarioError:
    details = error.errors()
    # Prefer the most informative error of a union: unknown keys first, then the deepest.
    details.sort(key=lambda e: (e["type"] != "extra_forbidden", -len(e["loc"])))
    first = details[0]
    loc = _strip_tags(first["loc"])
    where = format_loc(loc)
    if first["type"] == "extra_forbidden":
        allowed = _allowed_for(loc, data)
        key = str(loc[-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return error_at(
            path,
            _key_node(root_node, loc),
            format_loc(loc[:-1]) or "top level",
            f"unknown key {key!r}{hint}; expected one of {', '.join(allowed)}",
        )
    found = first.get("input")
    shown = f"; found {_short(found)}" if isinstance(found, str | int | float) else ""
    if isinstance(found, datetime):
        shown = f"; found {found.isoformat()}"
    message = first["msg"][:1].lower() + first["msg"][1:]
    return error_at(path, _node_at(root_node, loc), where, f"{message}{shown}")


def _strip_tags(loc: Sequence[str | int]) -> list[str | int]:
    """Drop the union tags pydantic puts in a location (``steps.3.create.count``)."""
    out: list[str | int] = []
    for i, part in enumerate(loc):
        if (
            part in ("create", "update")
            and i >= 1
            and isinstance(loc[i - 1], int)
            and i + 1 < len(loc)
        ):
            continue
        if isinstance(part, str) and part.startswith(("str", "Pick", "function-")):
            continue
        out.append(part)
    return out


#: The largest scenario file read, in bytes: a scenario is a page of YAML, not a data set.
MAX_FILE_BYTES = 10_000_000
#: How deeply a scenario's mappings and lists may nest in one another.
MAX_DEPTH = 100
#: How many YAML nodes the aliases (``*name``) of one file may add to it, all together.
MAX_ALIAS_NODES = 10_000
#: How many parsed files :func:`read_spec` keeps, so that a run parses each file once.
_CACHED_FILES = 16


class _Refused(Exception):
    """A scenario file that the loader refuses to read on, at a place in it."""

    def __init__(self, message: str, mark: yaml.Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class _ScenarioLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: nesting depth, alias expansion, and no duplicate keys.

    The checks run while the node tree is composed, so a file is refused before anything is
    built from it. Aliases are counted by the nodes they stand for (an anchor of 9 aliases of
    an anchor of 9 aliases ... is billions of nodes once a validator walks it), and an alias
    of the node it is in is refused.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) → the nodes it stands for, aliases expanded
        self._alias_nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            anchored = self.anchors.get(event.anchor)
            if anchored is not None:
                size = self._sizes.get(id(anchored))
                if size is None:
                    raise _Refused(
                        f"alias *{event.anchor} is inside the node it names (a recursive "
                        "alias); write the value out",
                        event.start_mark,
                    )
                self._alias_nodes += size
                if self._alias_nodes > MAX_ALIAS_NODES:
                    raise _Refused(
                        f"alias *{event.anchor} stands for {size:,} nodes, and the file's aliases "
                        f"add {self._alias_nodes:,} nodes in all, over the bound of "
                        f"{MAX_ALIAS_NODES:,}; write the values out, or use fewer aliases",
                        event.start_mark,
                    )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(
                f"nested more than {MAX_DEPTH} levels deep; a scenario needs a few levels, "
                "flatten the value",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        node = super().compose_node(parent, index)
        self._depth -= 1
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._sizes[id(item)] for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        self._sizes[id(node)] = size
        return node

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, yaml.Node] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            identity = self._key_identity(key)
            if identity in seen:
                first = seen[identity].start_mark.line + 1
                raise _Refused(
                    f"duplicate key {key.value!r} (first at line {first}); a key may appear "
                    "once in a mapping, remove one",
                    key.start_mark,
                )
            seen[identity] = key
        return node

    def _key_identity(self, key: yaml.ScalarNode) -> Any:
        """Return what a key is once read (``1`` and ``0x1`` are the same key), or its text."""
        constructor = self.yaml_constructors.get(key.tag)
        try:
            value = constructor(self, key) if constructor is not None else key.value
            hash(value)
        except Exception:  # a value that cannot be read is refused when the file is read
            return (key.tag, key.value)
        return value

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (yaml.YAMLError, _Refused):
            raise
        except (ValueError, OverflowError, TypeError) as error:
            # e.g. a timestamp of February 30th, or an integer of 5,000 digits
            problem = _one_line(error)
            if node.tag == "tag:yaml.org,2002:int" and "digits" in problem:
                problem = f"an integer of {len(str(node.value))} characters is too long to read"
            value = _short(node.value) if isinstance(node, yaml.ScalarNode) else "here"
            raise _Refused(
                f"cannot read the value {value}: {problem}; fix the value",
                node.start_mark,
            ) from None


def _short(value: object) -> str:
    """Return a value as a message shows it: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "..." + text[-1]


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


_parsed: dict[tuple[Path, bytes], tuple[ScenarioSpec, yaml.Node]] = {}


def read_spec(path: Path) -> tuple[ScenarioSpec, yaml.Node]:
    """Read and validate one scenario file (without following ``extends``).

    The file is parsed once: a second read of the same text returns the same result.

    Raises:
        ScenarioError: When the file is missing, empty, too big, not YAML (or YAML beyond the
            loader's bounds: depth, aliases, duplicate keys), or not a valid scenario.

    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(
                f"{display(path)}: the file is {size:,} bytes, over the bound of "
                f"{MAX_FILE_BYTES:,} for a scenario; a scenario describes data, it does not "
                "hold it (use count, mix and tiles)"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{display(path)}: no such scenario file; check the path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{display(path)}: cannot be read: {error}") from None
    key = (path, hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    if key in _parsed:
        return _parsed[key]
    try:
        loader = _ScenarioLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except _Refused as error:
        where = f":{error.mark.line + 1}" if error.mark else ""
        raise ScenarioError(f"{display(path)}{where}: {error.message}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or _one_line(error)
        context = getattr(error, "context", None) or ""
        first = getattr(error, "context_mark", None)
        if context.startswith("found duplicate anchor") and first is not None:
            name = context.split("'")[1] if "'" in context else ""
            problem = f"duplicate anchor &{name} (first at line {first.line + 1})"
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ScenarioError(
            f"{display(path)}{where}: YAML syntax error: {problem}; fix the file's syntax"
        ) from None
    if node is None or data is None:
        raise ScenarioError(
            f"{display(path)}: the file is empty; a scenario needs at least `description:` "
            "and `steps:` (see docs/scenarios.md)"
        )
    if not isinstance(data, dict):
        raise error_at(path, node, "", "a scenario is a mapping of keys (description, steps, ...)")
    try:
        spec = ScenarioSpec.model_validate(data)
    except ValidationError as error:
        raise _first_error(path, node, data, error) from None
    while len(_parsed) >= _CACHED_FILES:
        del _parsed[next(iter(_parsed))]
    _parsed[key] = (spec, node)
    return spec, node


def load(name_or_path: str) -> tuple[Scenario, dict[Path, yaml.Node]]:
    """Load a scenario and every scenario it extends.

    Returns:
        The scenario, and the YAML node tree of each file (for line numbers in later errors).

    Raises:
        ScenarioError: On any problem in any file of the chain, or a cycle of ``extends``.

    """
    path = locate(name_or_path)
    chain: list[tuple[str, Path, ScenarioSpec]] = []
    nodes: dict[Path, yaml.Node] = {}
    seen: list[Path] = []
    while True:
        if path in seen:
            cycle = " → ".join(display(p) for p in [*seen[seen.index(path) :], path])
            raise ScenarioError(f"{display(seen[-1])}: extends forms a cycle: {cycle}; remove one")
        seen.append(path)
        spec, node = read_spec(path)
        chain.append((path.stem, path, spec))
        nodes[path] = node
        if spec.extends is None:
            break
        try:
            path = locate(spec.extends, relative_to=path.parent)
        except ScenarioError as error:
            extends_node = _node_at(node, ["extends"])
            raise error_at(path, extends_node, "extends", str(error)) from None
    chain.reverse()
    scenario = Scenario(name=chain[-1][0], path=chain[-1][1], chain=tuple(chain))
    return scenario, nodes

