"""Where the grammar, the prelude and the templates live, installed or in a source tree."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def resource(name: str) -> Path:
    """A top-level resource folder: inside the package when installed, beside it in a checkout."""
    installed = PACKAGE / name
    if installed.is_dir():
        return installed
    return PACKAGE.parent / name
