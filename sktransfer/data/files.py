"""Image files on disk: which names count as images, and finding them under a folder.

Imports neither torch nor PIL, so the command line and the datasets can use it cheaply.
"""

from __future__ import annotations

import os
from pathlib import Path

#: File name extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _visible(name: str) -> bool:
    # editor and OS droppings (.DS_Store, .ipynb_checkpoints, ._x.png) are no data
    return not name.startswith(".")


def find_images(folder, extensions=IMAGE_EXTENSIONS, recursive: bool = True) -> list[str]:
    """The image files under ``folder`` (recursively, links followed, unless not
    ``recursive``), in sorted order. Hidden files and folders (names starting with
    ``"."``) are skipped.
    """
    suffixes = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if _visible(d)) if recursive else []
        found.extend(os.path.join(root, f) for f in sorted(files)
                     if _visible(f) and f.lower().endswith(suffixes))
    return found


def class_folders(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name (ImageFolder's class order)."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p.name)), key=lambda p: p.name)
