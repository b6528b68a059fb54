"""Render the nginx template outside the container (tests, a plain host).

The official nginx image renders ``ambito.conf.template`` with envsubst at start-up; this
does the same for ``${NAME}`` placeholders, but refuses to write a file that still holds one,
so a forgotten value fails here instead of as an obscure nginx parse error.

Usage: ``python deploy/nginx/render.py OUTPUT [NAME=VALUE ...]`` — values not given on the
command line are taken from the environment.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("ambito.conf.template")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RenderError(ValueError):
    """The template cannot be rendered with the values given."""


def placeholders(text: str) -> set[str]:
    """Names of the ``${NAME}`` placeholders in ``text``."""
    return set(PLACEHOLDER.findall(text))


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Replace every ``${NAME}``; raise :class:`RenderError` if any would be left."""
    missing = sorted(placeholders(text) - set(values))
    if missing:
        raise RenderError("no value for " + ", ".join(missing))
    rendered = PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)
    if "${" in rendered:
        raise RenderError("unreplaced '${' left in the rendered text")
    return rendered


def render(output: Path, values: Mapping[str, str], template: Path = TEMPLATE) -> Path:
    """Render ``template`` with ``values`` into ``output`` (parents created); return ``output``."""
    rendered = render_text(Path(template).read_text(encoding="utf-8"), values)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(rendered, encoding="utf-8")
    return output


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-") or any("=" not in arg for arg in args[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    values = dict(os.environ)
    values.update(arg.split("=", 1) for arg in args[1:])
    try:
        render(Path(args[0]), values)
    except RenderError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
