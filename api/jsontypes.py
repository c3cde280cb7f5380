"""JSON's own types for the request bodies: no coercion between them.

pydantic's lax mode takes `0` for a boolean, `"5"` or `true` for a number and an epoch number
for a date; the OpenAPI document says boolean, number and an RFC 3339 string, so each of those
is a 422 instead (schemathesis's `negative_data_rejection` found them). A registry file in TOML
or YAML is unaffected: its parser already yields booleans, numbers and dates.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BeforeValidator, Strict

Count = Annotated[int, Strict()]  # an integer: not 1.5, "1" or true
Number = Annotated[float, Strict()]  # an integer or a float: not "1.5" or true
Flag = Annotated[bool, Strict()]  # true or false: not 0, 1 or "yes"


def _written(value: Any) -> Any:
    if isinstance(value, int | float):
        raise ValueError("a date or time is a string (RFC 3339: 2024-01-15 or "
                         "2024-01-15T00:00:00Z), not a number")
    return value


Day = Annotated[dt.date, BeforeValidator(_written)]
Instant = Annotated[dt.datetime, BeforeValidator(_written)]
