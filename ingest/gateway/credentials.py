"""Gateway credentials on a Mosquitto broker: its password and ACL files, edited in place.

One MQTT identity per gateway. The username is `{pilot}.{gateway}`: ids match
`[A-Za-z0-9_-]{1,64}`, so the dot cannot occur inside either and `p1/gw1` (`p1.gw1`) and
`p2/gw1` (`p2.gw1`) are two identities; the collectors' account (`citypilot-collector`) has no
dot, so it can never collide with a gateway. Gateways and the collectors' account are in two
password files: the shipped broker reads the gateways' on its gateway listener (where the
client id is the username) and the collectors' on its collector listeners, so no gateway can
log in where it could take over a collector's client id. Each gateway gets an explicit ACL
section that lets it write below `citypilot/v1/{pilot}/{gateway}/` and read nothing
(explicit sections, not `pattern` lines with `%u`: the username is not a topic path).

Passwords are hashed the way Mosquitto 2.0's password file stores them (`mosquitto_passwd`'s
default): `$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`, 101 iterations, 12-byte
salt. The files are edited under a lock, written to a temp file and renamed into place
(mode and owner kept), so the broker never reads half a file; it re-reads both on SIGHUP.

Pure file editing, no settings and no command line: `citypilot gateway add|revoke|collector`
(citypilot/gateway_admin.py) hands in the paths.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.topics import ID_PATTERN, PREFIX, is_id

COLLECTOR_USER = "citypilot-collector"
HASH_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes
SALT_BYTES = 12
NEW_FILE_MODE = 0o640  # owner writes; the broker's group reads (docker-compose.yml: HOST_GID)

BASE_ACL = f"""\
# citypilot: Mosquitto ACL (acl_file). `citypilot gateway add|revoke` edit this file;
# reload the broker (SIGHUP) after any edit.
#
# Nothing stands above the first `user` line: a client without a section of its own may
# neither read nor write (and anonymous clients are refused by mosquitto.conf anyway).

# The collectors: one account, a client id each. They read all citypilot traffic (a shared
# subscription $share/<group>/citypilot/v1/# is checked against this line too) and write
# nothing but Sparkplug B rebirth requests; they read the broker's count of dropped messages
# too (/metrics, /readyz), and `citypilot doctor` probes the broker's queue limit on a topic
# of its own and reads its version. For each [[sources]] entry served by this broker add its
# filter, e.g. `topic read zigbee2mqtt/#` or `topic read spBv1.0/#`.
user {COLLECTOR_USER}
topic read {PREFIX}/#
topic write spBv1.0/+/NCMD/+
topic read $SYS/broker/publish/messages/dropped
topic readwrite citypilot/doctor/#
topic read $SYS/broker/version
topic read $SYS/broker/uptime

# Gateways, one section each (user `{{pilot}}.{{gateway}}`): write below their own
# {PREFIX}/{{pilot}}/{{gateway}}/ (status and last will included), read nothing.
"""


class GatewayError(Exception):
    """A refused credential operation; the message says what to do."""


def username(pilot: str, gateway: str) -> str:
    for label, value in (("pilot", pilot), ("gateway", gateway)):
        if not is_id(value):
            raise GatewayError(f"{label} {value!r} does not match {ID_PATTERN}")
    return f"{pilot}.{gateway}"


def mosquitto_hash(password: str, *, salt: bytes | None = None,
                   iterations: int = HASH_ITERATIONS) -> str:
    """The `$7$` PBKDF2-SHA512 hash that Mosquitto 2.0 reads from its password file."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_hash(password: str, hashed: str) -> bool:
    """Check a password against a `$7$` entry (what the broker does at CONNECT)."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        expected = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt),
                                       int(iterations))
        return hmac.compare_digest(expected, base64.b64decode(digest))
    except ValueError:
        return False


def new_password() -> str:
    """256 random bits, URL-safe (no `:` for the password file, no `@` or `/` for URLs)."""
    return secrets.token_urlsafe(32)


def acl_section(pilot: str, gateway: str) -> str:
    return (f"# gateway {pilot}/{gateway}\nuser {username(pilot, gateway)}\n"
            f"topic write {PREFIX}/{pilot}/{gateway}/#\n")


# -- files -----------------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Replace `path` by a complete new file: temp file in the same directory, fsync, rename.
    An existing file keeps its mode and (where permitted) owner; a new one gets NEW_FILE_MODE."""
    try:
        st: os.stat_result | None = path.stat()
    except FileNotFoundError:
        st = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, st.st_mode & 0o7777 if st else NEW_FILE_MODE)
        if st is not None:
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                pass  # not root: the file stays ours, with the old mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def locked(password_file: Path) -> Iterator[None]:
    """One editor at a time: an exclusive lock on a file beside the password file."""
    password_file.parent.mkdir(parents=True, exist_ok=True)
    with open(password_file.parent / f".{password_file.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def read_passwords(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            user, _, hashed = line.partition(":")
            rows.append((user, hashed))
    return rows


def set_password(path: Path, user: str, password: str) -> bool:
    """Add or replace one entry; True when the user already had one."""
    rows = read_passwords(path)
    existed = any(u == user for u, _ in rows)
    rows = [(u, h) for u, h in rows if u != user] + [(user, mosquitto_hash(password))]
    write_atomic(path, "".join(f"{u}:{h}\n" for u, h in rows))
    return existed


def drop_password(path: Path, user: str) -> bool:
    rows = read_passwords(path)
    kept = [(u, h) for u, h in rows if u != user]
    if len(kept) != len(rows):
        write_atomic(path, "".join(f"{u}:{h}\n" for u, h in kept))
    return len(kept) != len(rows)


def acl_text(path: Path) -> str:
    return path.read_text() if path.exists() else BASE_ACL


def without_section(text: str, user: str) -> tuple[str, bool]:
    """The ACL without `user`'s section: its `user` line, the `topic` lines and blank lines
    that follow it, and our `# gateway` comment right above it."""
    out: list[str] = []
    found = skipping = False
    for line in text.splitlines(keepends=True):
        word = line.split(maxsplit=1)[0] if line.strip() else ""
        if line.rstrip("\n") == f"user {user}":
            found, skipping = True, True
            if out and out[-1].startswith("# gateway "):
                out.pop()
            continue
        if skipping and word in ("topic", ""):
            continue
        skipping = False
        out.append(line)
    return "".join(out), found


def with_section(text: str, pilot: str, gateway: str) -> str:
    text, _ = without_section(text, username(pilot, gateway))
    return text.rstrip("\n") + "\n\n" + acl_section(pilot, gateway)


# -- operations ------------------------------------------------------------------------------
def add_gateway(password_file: Path, acl_file: Path, pilot: str, gateway: str, *,
                rotate: bool = False) -> tuple[str, str]:
    """Create (or with `rotate`, replace) a gateway's credentials; returns (user, password).
    The ACL goes first: a section without a password lets nobody in."""
    user = username(pilot, gateway)
    password = new_password()
    with locked(password_file):
        if not rotate and any(u == user for u, _ in read_passwords(password_file)):
            raise GatewayError(f"gateway {pilot}/{gateway} already has credentials; "
                               "`--rotate` gives it a new password, `revoke` removes it")
        acl_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(acl_file, with_section(acl_text(acl_file), pilot, gateway))
        set_password(password_file, user, password)
    return user, password


def revoke_gateway(password_file: Path, acl_file: Path, pilot: str, gateway: str) -> bool:
    """Remove a gateway's password and ACL section (password first: no login from then on)."""
    user = username(pilot, gateway)
    with locked(password_file):
        had_password = drop_password(password_file, user)
        text, had_section = without_section(acl_text(acl_file), user)
        if had_section:
            write_atomic(acl_file, text)
    return had_password or had_section


def set_collector(collector_file: Path, gateway_file: Path, acl_file: Path,
                  password: str) -> None:
    """Set the collectors' account password in their own password file (the broker's
    collector listeners read it, its gateway listener does not). The base ACL and an empty
    gateways' password file are written when missing (Mosquitto does not start without the
    files it names); the account leaves the gateways' file, where older versions put it."""
    with locked(gateway_file):
        if not acl_file.exists():
            acl_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(acl_file, BASE_ACL)
        if not gateway_file.exists():
            write_atomic(gateway_file, "")
        drop_password(gateway_file, COLLECTOR_USER)
        set_password(collector_file, COLLECTOR_USER, password)
