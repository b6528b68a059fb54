"""Copy the Bootstrap Italia files that pages use from node_modules into the common static dir.

Pages must not depend on a CDN (privacy of citizens, offline installs at the
Ambito, reproducible builds), so the npm package pinned in package.json is the
single source; this script only picks the built files out of it. The target
dir is git-ignored and rebuilt by ``make`` after ``npm ci``. Re-running is
cheap: files whose size and modification time already match are left alone,
and files the current package no longer ships are removed.

Fonts: Bootstrap Italia 2 declares no ``@font-face`` in its CSS (its JS can
inject them), so ``ambito_common/static/css/ambito.css`` declares them against
``../vendor/bootstrap-italia/fonts/``; only the WOFF2 files and their licences
are copied, which every supported browser reads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bootstrap-italia"
DEFAULT_SOURCE = REPO_ROOT / "node_modules" / PACKAGE
DEFAULT_TARGET = REPO_ROOT / "libs" / "common" / "src" / "ambito_common" / "static" / "vendor" / PACKAGE

# Paths relative to the package root; the layout under dist/ is kept so that
# relative references between the files keep working.
SINGLE_FILES = (
    "LICENSE",
    "dist/css/bootstrap-italia.min.css",
    "dist/js/bootstrap-italia.bundle.min.js",
    "dist/svg/sprites.svg",
)
FONT_FAMILIES = ("Titillium_Web", "Roboto_Mono", "Lora")
FONT_SUFFIXES = (".woff2", ".txt")


def planned_files(source: Path) -> Iterator[tuple[Path, str]]:
    """(source file, path relative to the target) for everything to vendor."""
    for relative in SINGLE_FILES:
        yield source / relative, relative.removeprefix("dist/")
    for family in FONT_FAMILIES:
        family_dir = source / "dist" / "fonts" / family
        if not family_dir.is_dir():
            raise FileNotFoundError(family_dir)
        for path in sorted(family_dir.iterdir()):
            if path.suffix in FONT_SUFFIXES:
                yield path, f"fonts/{family}/{path.name}"


def _up_to_date(src: Path, dst: Path) -> bool:
    if not dst.is_file():
        return False
    a, b = src.stat(), dst.stat()
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def _copy_atomically(src: Path, dst: Path) -> None:
    """A server reading the target never sees a half-written file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def vendor(source: Path, target: Path) -> dict[str, int]:
    """Make ``target`` hold exactly the planned files; return counts per action."""
    counts = {"copied": 0, "unchanged": 0, "removed": 0}
    wanted: set[Path] = set()
    for src, relative in planned_files(source):
        if not src.is_file():
            raise FileNotFoundError(src)
        dst = target / relative
        wanted.add(dst)
        if _up_to_date(src, dst):
            counts["unchanged"] += 1
        else:
            _copy_atomically(src, dst)
            counts["copied"] += 1
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_file() and path not in wanted:
            path.unlink()
            counts["removed"] += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help=f"the installed npm package (default: {DEFAULT_SOURCE})")
    parser.add_argument("--target", type=Path, default=DEFAULT_TARGET,
                        help=f"where pages load it from (default: {DEFAULT_TARGET})")
    args = parser.parse_args(argv)
    if not (args.source / "package.json").is_file():
        print(f"vendor_assets: {args.source} not found; run `npm ci` first", file=sys.stderr)
        return 1
    try:
        counts = vendor(args.source, args.target)
    except FileNotFoundError as exc:
        print(f"vendor_assets: {exc} is missing from the npm package", file=sys.stderr)
        return 1
    print("vendor_assets: " + ", ".join(f"{n} {action}" for action, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
