"""The line-protocol encoder, table-driven: what each hostile name or value becomes, and what
is refused because InfluxDB 1.x would store something else (see the module docstring)."""

from __future__ import annotations

import pytest

from ingest.model import Point
from ingest.stores.lineprotocol import UnrepresentablePoint, check_shape, encode

BS = "\\"


def point(measurement: str = "m", tags: tuple[tuple[str, str], ...] = (),
          fields: dict[str, float | str] | None = None, ts: int = 1) -> Point:
    return Point(measurement, tags, {"v": 1.0} if fields is None else fields, ts)


ENCODED = [
    ("plain", point(), "m v=1.0 1"),
    ("measurement comma space", point("a,b c"), f"a{BS},b{BS} c v=1.0 1"),
    ("measurement equals and quote are literal", point('a=b"c'), 'a=b"c v=1.0 1'),
    ("measurement leading space", point(" m"), f"{BS} m v=1.0 1"),
    ("hash later in measurement", point("m#1"), "m#1 v=1.0 1"),
    ("tags sorted", point(tags=(("pilot", "p"), ("device", "d"))), "m,device=d,pilot=p v=1.0 1"),
    ("tag value specials", point(tags=(("t", "a,b c=d"),)), f"m,t=a{BS},b{BS} c{BS}=d v=1.0 1"),
    ("tag key specials", point(tags=(("a b,c=d", "v"),)), f"m,a{BS} b{BS},c{BS}=d=v v=1.0 1"),
    ("tag value quote and hash", point(tags=(("t", '#"x"'),)), 'm,t=#"x" v=1.0 1'),
    ("tag value inner backslash", point(tags=(("t", f"a{BS}b{BS}{BS}c"),)),
     f"m,t=a{BS}b{BS}{BS}c v=1.0 1"),
    ("tag value tab", point(tags=(("t", "a\tb"),)), "m,t=a\tb v=1.0 1"),
    ("field key specials", point(fields={"a b,c=d": 1.0}), f"m a{BS} b{BS},c{BS}=d=1.0 1"),
    ("field key with quotes", point(fields={'"q"': 1.0}), 'm "q"=1.0 1'),
    ("string value quote", point(fields={"s": 'say "hi"'}), f'm s="say {BS}"hi{BS}"" 1'),
    ("string value backslashes", point(fields={"s": f"a{BS}b{BS}"}),
     f'm s="a{BS}{BS}b{BS}{BS}" 1'),
    ("string value raw controls", point(fields={"s": "a\nb\rc\td\x00e"}),
     'm s="a\nb\rc\td\x00e" 1'),
    ("string value line-protocol lookalikes", point(fields={"s": "x=1,y z"}), 'm s="x=1,y z" 1'),
    ("string value unicode", point(fields={"s": "µ€𝄞😀"}), 'm s="µ€𝄞😀" 1'),
    ("empty string value", point(fields={"s": ""}), 'm s="" 1'),
    ("whole float stays float", point(fields={"v": 3.0}), "m v=3.0 1"),
    ("int becomes float", point(fields={"v": 3}), "m v=3.0 1"),
    ("large and tiny floats", point(fields={"a": 1e300, "b": 5e-324}), "m a=1e+300,b=5e-324 1"),
    ("negative zero", point(fields={"v": -0.0}), "m v=-0.0 1"),
    ("negative timestamp", point(ts=-5), "m v=1.0 -5"),
    ("unicode names", point("µ", (("τ", "ü😀"),), {"ф": 1.0}), "µ,τ=ü😀 ф=1.0 1"),
]


@pytest.mark.parametrize(("case", "given", "line"), ENCODED, ids=[c[0] for c in ENCODED])
def test_encodes(case: str, given: Point, line: str) -> None:
    assert encode(given) == line.encode()


REFUSED = [
    ("empty measurement", point(""), "measurement is empty"),
    ("measurement comment", point("#m"), "comment"),
    ("measurement leading tab", point("\tm"), "whitespace"),
    ("newline in measurement", point("a\nb"), "newline"),
    ("NUL in measurement", point("a\x00b"), "NUL"),
    ("empty tag value", point(tags=(("t", ""),)), "tag value of 't' is empty"),
    ("empty tag key", point(tags=(("", "v"),)), "tag key is empty"),
    ("newline in tag value", point(tags=(("t", "a\nb"),)), "newline"),
    ("NUL in tag value", point(tags=(("t", "a\x00b"),)), "NUL"),
    ("CR in tag key", point(tags=(("a\rb", "v"),)), "CR"),
    ("trailing backslash in tag value", point(tags=(("t", f"a{BS}"),)), "backslash"),
    ("backslash before comma", point(tags=(("t", f"a{BS},b"),)), "backslash"),
    ("backslash before space", point(tags=(("t", f"a{BS} b"),)), "backslash"),
    ("backslash before quote in field key", point(fields={f"a{BS}\"": 1.0}), "backslash"),
    ("backslash ends measurement", point(f"m{BS}"), "backslash"),
    ("time tag", point(tags=(("time", "x"),)), "'time'"),
    ("duplicate tag key", point(tags=(("t", "a"), ("t", "b"))), "twice"),
    ("no fields", point(fields={}), "no fields"),
    ("empty field key", point(fields={"": 1.0}), "field key is empty"),
    ("newline in field key", point(fields={"a\nb": 1.0}), "newline"),
    ("time field", point(fields={"time": 1.0}), "dropped"),
    ("field key leading tab", point(fields={"\tk": 1.0}), "dropped"),
    ("NaN", point(fields={"v": float("nan")}), "finite"),
    ("infinity", point(fields={"v": float("-inf")}), "finite"),
    ("int too large for a float", point(fields={"v": 10**400}), "finite"),
    ("bool", point(fields={"v": True}), "not a float"),
    ("None", point(fields={"v": None}), "not a float"),  # type: ignore[dict-item]
    ("float timestamp", point(ts=1.5), "integer"),  # type: ignore[arg-type]
    ("timestamp out of range", point(ts=2**63), "range"),
    ("lone surrogate", point(fields={"s": "\ud800"}), "surrogate"),
    ("series key too long", point(tags=(("t", "x" * 70_000),)), "65535"),
]


@pytest.mark.parametrize(("case", "given", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refuses(case: str, given: Point, message: str) -> None:
    with pytest.raises(UnrepresentablePoint, match=message) as info:
        encode(given)
    assert isinstance(info.value, ValueError)


SHAPES = [
    ("known tags", point(tags=(("pilot", "p"), ("reason", "r"))), None),
    ("unknown tag key", point(tags=(("host", "h"),)), "not one of"),
    ("field named like a tag", point(fields={"device": 1.0}), "also a tag key"),
]


@pytest.mark.parametrize(("case", "given", "message"), SHAPES, ids=[c[0] for c in SHAPES])
def test_citypilot_shape(case: str, given: Point, message: str | None) -> None:
    if message is None:
        check_shape(given)
    else:
        with pytest.raises(UnrepresentablePoint, match=message):
            check_shape(given)
