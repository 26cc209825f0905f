"""YAML to plain data that remembers where every key and value was written.

`yaml.safe_load` forgets positions and silently keeps the last of two duplicate keys,
so a spec error could only say *what* is wrong, not *where*. Here the text is composed
into nodes (which keep their start marks) and turned into plain data by hand, recording
for each path such as ``("changes", 0, "sysctl")`` the position of its key and of its
value, and reporting duplicate keys, non-string keys and unsupported tags on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DataPath = tuple[str | int, ...]
_Pair = tuple[MappingNode, Node, Node]
"""A mapping entry with the mapping it was written in: (mapping, key node, value node)."""

MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"

MAX_DEPTH = 64
"""Deeper than any real spec (about 5); stops recursion long before Python's limit."""
MAX_NODES = 100_000
"""Bounds alias expansion ("billion laughs"): a spec has a few hundred nodes at most."""

_YAML_TYPE_NAMES = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
    "tag:yaml.org,2002:binary": "binary data",
}


@dataclass(frozen=True)
class Mark:
    """A 1-based position in the text, as editors and compilers print it."""

    line: int
    column: int

    @classmethod
    def of(cls, mark: yaml.Mark | None) -> Mark:
        """PyYAML marks are 0-based; a missing mark means the start of the file."""
        if mark is None:
            return cls(1, 1)
        return cls(mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class Location:
    """Where a value sits: its key (or list item) and the value itself.

    `plain_text` is the source text of an unquoted scalar that YAML read as something
    other than a string (``on``, ``2024-01-01``, ``12``), so an error can say "quote it".
    """

    key: Mark
    value: Mark
    plain_text: str | None = None
    read_as: str | None = None


@dataclass(frozen=True)
class RawProblem:
    """A problem found while reading YAML, before the file name is attached."""

    mark: Mark
    path: DataPath
    message: str


class YamlFailure(Exception):
    """The text cannot be turned into data at all (syntax, encoding, shape)."""

    def __init__(self, mark: Mark, message: str, path: DataPath = ()) -> None:
        super().__init__(message)
        self.problem = RawProblem(mark, path, message)


@dataclass
class Composed:
    """Plain data (dicts, lists, scalars), where each path was written, and soft problems.

    Soft problems (duplicate or non-string keys, unsupported tags) still leave usable
    data, so schema validation can run too and the user sees every problem at once.
    """

    data: Any
    locations: dict[DataPath, Location] = field(default_factory=dict)
    problems: list[RawProblem] = field(default_factory=list)
    unreadable: set[DataPath] = field(default_factory=set)
    """Values already reported as unreadable; schema errors about them would repeat it."""

    def nearest(self, path: DataPath) -> tuple[DataPath, Location]:
        """The location of `path`, or of its closest ancestor that was written."""
        for n in range(len(path), -1, -1):
            loc = self.locations.get(path[:n])
            if loc is not None:
                return path[:n], loc
        return (), Location(Mark(1, 1), Mark(1, 1))


class _Loader(yaml.SafeLoader):
    """SafeLoader that also remembers where each alias (`*name`) was used.

    A composed alias *is* its anchor's node, so without this an error about
    `observe: *common` would point at the anchor, not at the place the value is used.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.alias_marks: dict[tuple[int, int], yaml.Mark] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        mark = None
        if parent is not None and self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        node = super().compose_node(parent, index)
        if mark is not None:  # index: the key node in a mapping, the position in a list
            slot = index if isinstance(index, int) else id(index)
            self.alias_marks[(id(parent), slot)] = mark
        return node

    def used_at(self, parent: Node, slot: int | Node, node: Node) -> Mark:
        """Where `node` appears under `parent`: the alias if it was one, else the node."""
        key = (id(parent), slot if isinstance(slot, int) else id(slot))
        return Mark.of(self.alias_marks.get(key, node.start_mark))


def describe_text_problem(exc: yaml.YAMLError, text: str) -> YamlFailure:
    """Turn any PyYAML reading/scanning/parsing error into one positioned sentence."""
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: max(0, exc.position)]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character
        shown = f"{char:#04x}" if isinstance(char, int) else repr(char)
        return YamlFailure(Mark(line, column),
                           f"character {shown} is not allowed in YAML; "
                           "expected printable text")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if "'\\t'" in problem:
            return YamlFailure(Mark.of(mark), "tab character in indentation; "
                                              "expected spaces (YAML does not allow tabs)")
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        return YamlFailure(Mark.of(mark), f"invalid YAML: {problem}{context}; "
                                          "expected well-formed YAML")
    return YamlFailure(Mark(1, 1), f"invalid YAML: {exc}; expected well-formed YAML")


def compose(text: str) -> Composed:
    """Parse exactly one YAML document into data plus locations.

    Raises YamlFailure for text that yields no usable data: syntax errors, no
    document, more than one document, nesting or alias expansion beyond any sane spec.
    """
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        if not loader.check_node():
            raise YamlFailure(Mark(1, 1), "the file is empty; expected a mapping with at "
                                          "least 'drill' and 'targets'")
        root = loader.get_node()
        if loader.check_node():
            second = loader.peek_event()  # type: ignore[no-untyped-call]
            raise YamlFailure(Mark.of(second.start_mark),
                              "a second YAML document starts here; expected exactly one "
                              "drill spec per file")
        assert root is not None
        return _Builder(loader).build_root(root)
    except yaml.YAMLError as exc:
        raise describe_text_problem(exc, text) from None
    except RecursionError:
        mark = Mark.of(loader.get_mark()) if loader is not None else Mark(1, 1)
        raise YamlFailure(mark, "the YAML is nested too deeply; expected a drill spec "
                                f"(at most {MAX_DEPTH} levels)") from None
    finally:
        if loader is not None:
            loader.dispose()


def _kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return _YAML_TYPE_NAMES.get(node.tag, "a scalar")


class _Builder:
    """Walks composed nodes into plain data, tracking depth, budget and alias cycles."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.out = Composed(data=None)
        self.budget = MAX_NODES
        self.active: set[int] = set()

    def build_root(self, root: Node) -> Composed:
        """The top level must be a non-empty mapping: a spec is a set of named keys."""
        if isinstance(root, ScalarNode) and root.tag == "tag:yaml.org,2002:null":
            raise YamlFailure(Mark.of(root.start_mark),
                              "the document is empty; expected a mapping with at least "
                              "'drill' and 'targets'")
        if not isinstance(root, MappingNode):
            raise YamlFailure(Mark.of(root.start_mark),
                              f"the top level is {_kind_of(root)}; expected a mapping of "
                              "spec keys (drill, targets, changes, ...)")
        mark = Mark.of(root.start_mark)
        self.out.locations[()] = Location(mark, mark)
        self.out.data = self.build(root, (), 0)
        return self.out

    def soft(self, node: Node, path: DataPath, message: str) -> None:
        self.out.problems.append(RawProblem(Mark.of(node.start_mark), path, message))

    def spend(self, node: Node, path: DataPath) -> None:
        """Count one more value; aliases can make a small text expand without bound."""
        self.budget -= 1
        if self.budget < 0:
            raise YamlFailure(Mark.of(node.start_mark),
                              f"the document expands to more than {MAX_NODES} values "
                              "(through aliases?); expected a drill spec", path)

    def build(self, node: Node, path: DataPath, depth: int) -> Any:
        """Data for `node` at `path`; the caller has recorded the node's location."""
        self.spend(node, path)
        if depth > MAX_DEPTH:
            raise YamlFailure(Mark.of(node.start_mark),
                              f"nested more than {MAX_DEPTH} levels deep; expected a "
                              "drill spec", path)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise YamlFailure(self.out.locations[path].value,
                              "an alias refers to a collection that contains it; expected "
                              "data without cycles", path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != SEQ_TAG:
                    self.soft(node, path, f"unsupported YAML tag '{node.tag}'; expected a "
                                          "plain list")
                return self.sequence(node, path, depth)
            assert isinstance(node, MappingNode)
            if node.tag != MAP_TAG:
                self.soft(node, path, f"unsupported YAML tag '{node.tag}'; expected a "
                                      "plain mapping")
            return self.mapping(node, path, depth)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: DataPath) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except Exception as exc:  # explicit tags (!!int x, !!bool y) fail in many ways
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            problem = getattr(exc, "problem", None) or f"not a valid {tag} value"
            self.out.unreadable.add(path)
            self.soft(node, path, f"cannot read this value: {problem}; expected a plain "
                                  "string, number, boolean or null")
            return None

    def sequence(self, node: SequenceNode, path: DataPath, depth: int) -> list[Any]:
        items: list[Any] = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            mark = self.loader.used_at(node, index, item)
            self.out.locations[child] = self.location(mark, mark, item)
            items.append(self.build(item, child, depth + 1))
        return items

    def mapping(self, node: MappingNode, path: DataPath, depth: int) -> dict[str, Any]:
        """Explicit keys first (duplicates reported), then `<<` merges fill the gaps."""
        result: dict[str, Any] = {}
        first_seen: dict[Any, Node] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                merges.append(value_node)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in first_seen:
                first = Mark.of(first_seen[key].start_mark)
                self.soft(key_node, (*path, key),
                          f"duplicate key '{key}' (first at line {first.line}); "
                          "expected each key once")
                continue
            first_seen[key] = key_node
            self.put(result, path, key, (node, key_node, value_node), depth)
        for source in merges:
            for pair in self.merged_pairs(source, path, depth):
                key = self.key(pair[1], path)
                if key is not None and key not in result:
                    self.put(result, path, key, pair, depth)
        return result

    def put(self, result: dict[str, Any], path: DataPath, key: str, pair: _Pair,
            depth: int) -> None:
        parent, key_node, value_node = pair
        child = (*path, key)
        value_mark = self.loader.used_at(parent, key_node, value_node)
        self.out.locations[child] = self.location(Mark.of(key_node.start_mark), value_mark,
                                                  value_node)
        result[key] = self.build(value_node, child, depth + 1)

    def merged_pairs(self, source: Node, path: DataPath,
                     depth: int) -> list[_Pair]:
        """The key/value pairs a `<<` value brings in; earlier ones win, as in YAML."""
        if depth > MAX_DEPTH:
            raise YamlFailure(Mark.of(source.start_mark),
                              "'<<' merges nest too deeply (a cycle?); expected a drill "
                              "spec", path)
        sources = source.value if isinstance(source, SequenceNode) else [source]
        pairs: list[_Pair] = []
        nested: list[Node] = []
        for mapping in sources:
            self.spend(mapping, path)
            if not isinstance(mapping, MappingNode):
                self.soft(mapping, path, f"a '<<' merge got {_kind_of(mapping)}; expected "
                                         "a mapping or a list of mappings")
                continue
            for key_node, value_node in mapping.value:
                if key_node.tag == MERGE_TAG:
                    nested.append(value_node)
                else:
                    pairs.append((mapping, key_node, value_node))
        for inner in nested:
            pairs.extend(self.merged_pairs(inner, path, depth + 1))
        return pairs

    def location(self, key_mark: Mark, value_mark: Mark, value_node: Node) -> Location:
        """Also keep the text of an unquoted, untagged scalar that YAML read as non-text."""
        plain: str | None = None
        read_as: str | None = None
        if (isinstance(value_node, ScalarNode) and value_node.style is None
                and value_node.tag != STR_TAG
                and self.loader.resolve(  # type: ignore[no-untyped-call]
                    ScalarNode, value_node.value,
                    (True, False)) == value_node.tag):
            plain = value_node.value
            read_as = _kind_of(value_node)
        return Location(key_mark, value_mark, plain, read_as)

    def key(self, key_node: Node, path: DataPath) -> str | None:
        """A mapping key as a string, or None (reported) when YAML reads it as non-text."""
        if not isinstance(key_node, ScalarNode):
            self.soft(key_node, path, f"a key is {_kind_of(key_node)}; expected a plain "
                                      "string key")
            return None
        if key_node.tag != STR_TAG:
            text = key_node.value
            what = f"key {text}" if text else "an empty key"
            quote = f" (quote it: \"{text}\")" if text else ""
            self.soft(key_node, path, f"{what} is read by YAML as {_kind_of(key_node)}; "
                                      f"expected a string key{quote}")
            return None
        value = self.scalar(key_node, path)
        return value if isinstance(value, str) else None

