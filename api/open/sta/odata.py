"""The OData query options SensorThings 1.1 asks of a read-only service, as pure functions.

`$top` (default 100, at most 10,000), `$skip`, `$count`, `$orderby` (properties, asc/desc),
`$select` (properties), `$expand` (one level: navigation properties, each with its own
`$select`, `$top`, `$skip`, `$orderby`, `$filter` after `;`), and `$filter` with `eq ne gt ge
lt le`, `and or not` and parentheses over an entity's own properties (`name`, `result`,
`phenomenonTime`, `properties/kind`, ...) and literals: numbers, 'strings' (a quote doubled
inside), ISO 8601 times with an offset, `true`, `false`, `null`. What the standard has beyond
that (functions, arithmetic, lambda operators, paths through navigation properties) is a 400
naming what is not supported. No library parses OData for Python that is maintained and made
for serving (odata-query targets SQLAlchemy and Django queries), so this is written here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DEFAULT_TOP = 100
MAX_TOP = 10_000
MAX_FILTER = 2000  # characters


class ODataError(ValueError):
    """A query option that is wrong or not supported: a 400 with this message."""


@dataclass(frozen=True, slots=True)
class Time:
    """A time literal or value, ns since the epoch (the start of an interval)."""

    ns: int


Value = float | str | bool | Time | None


@dataclass(frozen=True, slots=True)
class Prop:
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Lit:
    value: Value


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str
    left: Prop | Lit
    right: Prop | Lit


@dataclass(frozen=True, slots=True)
class Bool:
    op: str  # and, or, not
    args: tuple[Node, ...]


Node = Cmp | Bool
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_TOKEN = re.compile(r"""\s*(?:
    (?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d))
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:[^']|'')*')
  | (?P<word>[A-Za-z_@][A-Za-z0-9_.@]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<paren>[()])
  | (?P<bad>\S+))""", re.VERBOSE)


def parse_time(text: str) -> int:
    """ns of an ISO 8601 time with an offset; ODataError otherwise."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ODataError(f"{text[:40]!r} is not an ISO 8601 time with an offset")
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1000


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "bad"
        out.append((kind, m.group(kind)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_FILTER:
            raise ODataError(f"$filter is longer than {MAX_FILTER} characters")
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ODataError("$filter ends too early")
        self.at += 1
        return token

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1] in words:
            self.at += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise ODataError(f"$filter: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_(self) -> Node:
        args = [self.and_()]
        while self.word("or"):
            args.append(self.and_())
        return args[0] if len(args) == 1 else Bool("or", tuple(args))

    def and_(self) -> Node:
        args = [self.not_()]
        while self.word("and"):
            args.append(self.not_())
        return args[0] if len(args) == 1 else Bool("and", tuple(args))

    def not_(self) -> Node:
        if self.word("not"):
            return Bool("not", (self.not_(),))
        return self.comparison()

    def comparison(self) -> Node:
        token = self.peek()
        if token == ("paren", "("):
            self.take()
            node = self.or_()
            if self.take() != ("paren", ")"):
                raise ODataError("$filter: a parenthesis is not closed")
            return node
        left = self.operand()
        kind, op = self.take()
        if kind != "word" or op not in _OPS:
            raise ODataError(f"$filter: {op!r} is not supported here: use eq, ne, gt, ge, "
                             "lt, le, and, or, not")
        return Cmp(op, left, self.operand())

    def operand(self) -> Prop | Lit:
        kind, text = self.take()
        if kind == "time":
            return Lit(Time(parse_time(text)))
        if kind == "num":
            return Lit(float(text))
        if kind == "str":
            return Lit(text[1:-1].replace("''", "'"))
        if kind == "word":
            if text in ("true", "false"):
                return Lit(text == "true")
            if text == "null":
                return Lit(None)
            if self.peek() == ("paren", "("):
                raise ODataError(f"$filter: the function {text}() is not supported")
            if text in _OPS or text in ("and", "or", "not"):
                raise ODataError(f"$filter: {text!r} needs an operand before it")
            return Prop(tuple(text.split("/")))
        raise ODataError(f"$filter: {text[:40]!r} is not supported")


def parse_filter(text: str) -> Node:
    return _Parser(text).parse()


def _value(operand: Prop | Lit, entity: dict[str, Any]) -> Value:
    if isinstance(operand, Lit):
        return operand.value
    value: Any = entity
    for part in operand.path:
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value if isinstance(value, str | bool | Time) or value is None else None


def _as_time(value: Value) -> Value:
    if isinstance(value, str):
        try:
            return Time(parse_time(value.partition("/")[0]))
        except ODataError:
            return value
    return value


def _compare(op: str, a: Value, b: Value) -> bool:
    if isinstance(a, Time) or isinstance(b, Time):
        a, b = _as_time(a), _as_time(b)
    if op in ("eq", "ne"):
        return (a == b) == (op == "eq")
    if a is None or b is None or type(a) is not type(b):
        return False
    x, y = (a.ns, b.ns) if isinstance(a, Time) and isinstance(b, Time) else (a, b)
    result: bool = {"gt": x > y, "ge": x >= y, "lt": x < y, "le": x <= y}[op]  # type: ignore[operator]
    return result


def matches(node: Node, entity: dict[str, Any]) -> bool:
    """Whether the entity (its properties; times as `Time`) passes the filter."""
    if isinstance(node, Cmp):
        return _compare(node.op, _value(node.left, entity), _value(node.right, entity))
    if node.op == "not":
        return not matches(node.args[0], entity)
    found = (matches(a, entity) for a in node.args)
    return all(found) if node.op == "and" else any(found)


def properties(node: Node) -> set[str]:
    """The first path segment of every property the filter reads."""
    if isinstance(node, Cmp):
        return {o.path[0] for o in (node.left, node.right) if isinstance(o, Prop)}
    return set().union(*(properties(a) for a in node.args))


_FLIP = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge", "eq": "eq", "ne": "ne"}


def time_bounds(node: Node | None, name: str) -> tuple[int | None, int | None]:
    """[lo, hi) ns that every match of `node` lies in, from the comparisons of property `name`
    with a time joined by `and` at the top (the rest is checked entity by entity)."""
    lo: int | None = None
    hi: int | None = None
    conjuncts = [] if node is None else (
        list(node.args) if isinstance(node, Bool) and node.op == "and" else [node])
    for c in conjuncts:
        if not isinstance(c, Cmp):
            continue
        op, left, right = c.op, c.left, c.right
        if isinstance(right, Prop):
            op, left, right = _FLIP[op], right, left
        if not (isinstance(left, Prop) and left.path == (name,) and isinstance(right, Lit)
                and isinstance(right.value, Time)):
            continue
        t = right.value.ns
        if op in ("gt", "ge", "eq"):
            start = t + (1 if op == "gt" else 0)
            lo = start if lo is None else max(lo, start)
        if op in ("lt", "le", "eq"):
            end = t + (0 if op == "lt" else 1)
            hi = end if hi is None else min(hi, end)
    return lo, hi


@dataclass(frozen=True, slots=True)
class Options:
    """The query options of one collection (or one expanded navigation property)."""

    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    orderby: tuple[tuple[str, bool], ...] = ()  # (property, descending)
    select: tuple[str, ...] | None = None
    expand: dict[str, Options] = field(default_factory=dict)
    filter: Node | None = None
    given: tuple[tuple[str, str], ...] = ()  # as sent, for the next link


def _int(name: str, text: str, high: int) -> int:
    if not text.isdigit() or int(text) > high:
        raise ODataError(f"{name} must be a whole number from 0 to {high}, not {text[:20]!r}")
    return int(text)


def _split(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside parentheses and quotes."""
    parts, depth, quoted, current = [], 0, False, ""
    for ch in text:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch in "()":
            depth += 1 if ch == "(" else -1
        if ch == sep and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if depth or quoted:
        raise ODataError(f"unbalanced parentheses or quotes in {text[:60]!r}")
    return [*parts, current]


def parse_options(given: dict[str, str], navigation: set[str], nested: bool = False
                  ) -> Options:
    """Options from the query (`$name` -> text); `navigation`: the names $expand may take."""
    known = {"$top", "$skip", "$count", "$orderby", "$select", "$expand", "$filter",
             "$resultFormat"}
    for name in given:
        if name.startswith("$") and name not in known:
            raise ODataError(f"{name} is not a query option this service supports")
    if given.get("$resultFormat") not in (None, "default"):
        raise ODataError("$resultFormat: only the default format is served")
    top = _int("$top", given["$top"], MAX_TOP) if "$top" in given else DEFAULT_TOP
    skip = _int("$skip", given["$skip"], 10**9) if "$skip" in given else 0
    count = given.get("$count", "false")
    if count not in ("true", "false"):
        raise ODataError("$count is true or false")
    orderby = []
    for part in filter(None, (p.strip() for p in given.get("$orderby", "").split(","))):
        name, _, way = part.partition(" ")
        if way.strip() not in ("", "asc", "desc") or not re.fullmatch(r"[A-Za-z@][\w@.]*",
                                                                      name):
            raise ODataError(f"$orderby: {part[:40]!r} is not property [asc|desc]")
        orderby.append((name, way.strip() == "desc"))
    select = None
    if "$select" in given:
        select = tuple(s.strip() for s in given["$select"].split(",") if s.strip())
    expand: dict[str, Options] = {}
    for part in filter(None, (p.strip() for p in _split(given.get("$expand", ""), ","))):
        name, _, inner = part.partition("(")
        name = name.strip()
        if "/" in name or nested:
            raise ODataError(f"$expand: {part[:40]!r} — only one level of $expand is served")
        if name not in navigation:
            raise ODataError(f"$expand: {name[:40]!r} is not a navigation property here "
                             f"({', '.join(sorted(navigation))})")
        inner_given = {}
        for option in filter(None, _split(inner[:-1], ";") if inner else []):
            key, eq, value = option.partition("=")
            if not eq:
                raise ODataError(f"$expand: {option[:40]!r} is not $option=value")
            inner_given[key.strip()] = value.strip()
        expand[name] = parse_options(inner_given, set(), nested=True)
    node = parse_filter(given["$filter"]) if given.get("$filter") else None
    return Options(top, skip, count == "true", tuple(orderby), select, expand, node,
                   tuple(sorted(given.items())))
