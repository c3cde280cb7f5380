"""API keys: roles, key records and their scrypt hashes.

Keys are `cpk_<id>_<secret>`: the id is a lookup prefix (one primary-key read per request),
the secret is 256 random bits stored only as a salted scrypt hash. For random secrets a fast
hash would resist brute force as well; scrypt costs little here because a verified key is
remembered (by a SHA-256 of it) for the process's lifetime, and it keeps a leaked catalogue
useless even for a weaker imported key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

KEY_PREFIX = "cpk_"


class Role(StrEnum):
    VIEWER = "viewer"  # city staff: pilots, KPIs, exports
    OPERATOR = "operator"  # pilot operators: plus devices, readings, dead letters
    ADMIN = "admin"  # plus keys and the registry

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class KeyState(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record, never its secret."""

    id: str
    name: str
    role: Role
    pilots: frozenset[str] | None  # None: every pilot
    created_ns: int
    expires_ns: int | None
    revoked_ns: int | None

    def state(self, now_ns: int) -> KeyState:
        if self.revoked_ns is not None:
            return KeyState.REVOKED
        if self.expires_ns is not None and now_ns >= self.expires_ns:
            return KeyState.EXPIRED
        return KeyState.ACTIVE

    def may_read(self, pilot: str) -> bool:
        return self.pilots is None or pilot in self.pilots


def hash_secret(secret: str, salt: bytes, cost: int) -> bytes:
    # scrypt with r=8: n=2**14 takes 16 MiB and tens of milliseconds per check (the
    # verified-key cache keeps that off the request path after the first use of a key).
    return hashlib.scrypt(secret.encode(), salt=salt, n=cost, r=8, p=1, dklen=32)


def split_key(presented: str) -> tuple[str, str]:
    """(id, secret) of a well-formed key, else ("", "")."""
    if not presented.startswith(KEY_PREFIX) or len(presented) < len(KEY_PREFIX) + 14 \
            or presented[len(KEY_PREFIX) + 12] != "_":
        return "", ""
    key_id = presented[len(KEY_PREFIX):len(KEY_PREFIX) + 12]
    if any(c not in "0123456789abcdef" for c in key_id):
        return "", ""
    return key_id, presented[len(KEY_PREFIX) + 13:]


def key_from_row(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, role, pilots, created, expires, revoked = row
    return ApiKey(str(key_id), str(name), Role(role),
                  None if pilots is None else frozenset(json.loads(pilots)), int(created),
                  None if expires is None else int(expires),
                  None if revoked is None else int(revoked))
