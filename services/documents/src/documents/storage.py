"""The package store: one folder per package, ``<storage_dir>/<package_id>/<name>``.

A package's files are written into a temporary folder and renamed into place
in one step, so a crash never leaves a half package where a reader could find
it. Files are stored before the package row is committed; a crash between the
two leaves only an unreferenced folder, never a row without its files.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

# File names come from our builders, but they end up in paths: one plain name, no hidden files.
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f]|^\.|^$")
_TMP = ".tmp"


class StoredFile(Protocol):
    name: str
    data: bytes


class PackageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, package_id: str, files: Iterable[StoredFile]) -> Path:
        """Write all files of a new package atomically; returns its folder."""
        staging_root = self.root / _TMP
        staging_root.mkdir(parents=True, exist_ok=True)
        staging = staging_root / f"{package_id}.{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            for file in files:
                path = staging / _checked_name(file.name)
                with open(path, "xb") as handle:
                    handle.write(file.data)
                    handle.flush()
                    os.fsync(handle.fileno())
            _fsync_dir(staging)
            target = self.folder(package_id)
            os.rename(staging, target)  # fails if the target exists: a package is written once
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def remove(self, package_id: str) -> None:
        """Delete a package's folder (used when its row could not be committed)."""
        shutil.rmtree(self.folder(package_id), ignore_errors=True)

    def folder(self, package_id: str) -> Path:
        return self.root / _checked_name(package_id)

    def path(self, package_id: str, name: str) -> Path:
        return self.folder(package_id) / _checked_name(name)

    def exists(self, package_id: str) -> bool:
        return self.folder(package_id).is_dir()


def _checked_name(name: str) -> str:
    if _UNSAFE_NAME.search(name) or len(name.encode()) > 255:
        raise ValueError(f"unsafe file name in a package: {name!r}")
    return name


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: without this a power cut may forget it."""
    fd = os.open(path, os.O_RDONLY)
    with contextlib.suppress(OSError):
        os.fsync(fd)
    os.close(fd)
