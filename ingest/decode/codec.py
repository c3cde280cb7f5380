"""What a payload codec is: the `Codec` call signature and the `CodecError` it raises.

Kept apart from the registry (`codecs.py`), which imports every codec module: a codec module
imports only this one, so the two never import each other.
"""

from __future__ import annotations

from typing import Any, Protocol


class CodecError(ValueError):
    """The bytes are not a valid payload of this codec's format (the message says where)."""


class Codec(Protocol):
    def __call__(self, payload: bytes, f_port: int) -> dict[str, Any]: ...
