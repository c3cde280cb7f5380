"""A small real filesystem for disk-fault tests: a tmpfs of a few MB, mounted for one test
(the tests run as root; mounting is a kernel feature, not a mock of one).

It can be filled to the last byte with a ballast file and freed again, and remounted
read-only and writable. Linux refuses to remount a filesystem read-only while a process has a
file open for writing on it (EBUSY), so `read_only()` is for a disk no process has open:
between two collector runs, as after a reboot that found the disk damaged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


class SmallDisk:
    def __init__(self, mountpoint: Path, size_bytes: int) -> None:
        self.path = mountpoint
        self.size_bytes = size_bytes
        self._ballast = mountpoint / "ballast"

    def mount(self, *args: str) -> None:
        run = subprocess.run(["mount", *args, str(self.path)], capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"mount {' '.join(args)} {self.path} failed: "
                               f"{run.stderr.strip()} (the disk-fault tests mount a tmpfs: "
                               "run them as root, with CAP_SYS_ADMIN)")

    def fill(self) -> int:
        """Write the ballast until the filesystem has no byte left; returns bytes written."""
        written = 0
        chunk = b"\0" * 65536
        with open(self._ballast, "ab", buffering=0) as f:
            while True:
                try:
                    written += f.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            for size in (4096, 512, 1):  # the last bytes, in smaller and smaller writes
                with contextlib.suppress(OSError):
                    while True:
                        written += f.write(b"\0" * size)
        return written

    def free(self) -> None:
        self._ballast.unlink(missing_ok=True)

    def read_only(self) -> None:
        self.mount("-o", "remount,ro")

    def writable(self) -> None:
        self.mount("-o", "remount,rw")


@contextlib.contextmanager
def small_disk(where: Path, size_bytes: int = 8 << 20) -> Iterator[SmallDisk]:
    where.mkdir(parents=True, exist_ok=True)
    disk = SmallDisk(where, size_bytes)
    disk.mount("-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs")
    try:
        yield disk
    finally:
        # Lazy: a collector a failed test left behind may still hold files there.
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            os.rmdir(where)
