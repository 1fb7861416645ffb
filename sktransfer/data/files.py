"""Image files on disk: which names count as images, and finding them under a folder.

Imports neither torch nor PIL, so the command line and the datasets can use it cheaply.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

#: File name extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: File name extensions read as sound (audio backbones).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


def _visible(name: str) -> bool:
    # editor and OS droppings (.DS_Store, .ipynb_checkpoints, ._x.png) are no data
    return not name.startswith(".")


class ImageWalk:
    """Image files found under folders, links followed, each real folder entered once and
    each real file listed once.

    A link that loops (``ln -s .. a/up``, a link to any folder that holds it), a second
    path to a folder already walked, a file reached again through a link, a broken link,
    and, with homes (:meth:`claim`), a link from one home into another's folder (a class
    folder into another class's) are skipped and recorded in ``skipped`` as
    ``(path, reason)``: never read twice, never under the wrong label. (Hard links are
    separate files: nothing marks them as one.)

    Parameters
    ----------
    extensions : sequence of str
        File name extensions read as images (compared case-insensitively).
    root : path, optional
        A folder that holds the homes (the dataset folder): a link back into it from a
        home is skipped.
    """

    def __init__(self, extensions=IMAGE_EXTENSIONS, root=None):
        self.suffixes = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        self.root = None if root is None else os.path.realpath(root)
        self.homes: list[str] = []
        self.entered: set = set()
        self.listed: dict = {}
        self.skipped: list = []

    def claim(self, folders) -> None:
        """Declare the folders walked as homes: a link from one into another is skipped."""
        self.homes = [os.path.realpath(f) for f in folders]

    def _elsewhere(self, real: str, home: str):
        """Why ``real``, reached from ``home``, belongs to another part of the dataset (or None)."""
        if _inside(real, home):
            return None
        for other in self.homes:
            if other != home and _inside(real, other):
                return f"a link into {other!r}, walked on its own"
        if self.root is not None and _inside(real, self.root):
            return f"a link back into {self.root!r}"
        return None

    def images(self, folder, recursive: bool = True) -> list[str]:
        """The image files under ``folder`` (recursively unless not ``recursive``), sorted
        by path; hidden files and folders (names starting with ``"."``) are skipped.

        Real paths are resolved only for links (a plain entry's is its folder's, joined):
        walking costs no system call per file beyond listing its folder."""
        home = os.path.realpath(folder)
        found: list[str] = []
        stack = [(str(folder), home)]
        self.entered.add(home)
        while stack:
            current, current_real = stack.pop()
            try:
                entries = sorted(os.scandir(current), key=lambda e: e.name)
            except OSError as exc:
                self.skipped.append((current, f"cannot be listed ({exc.strerror or exc})"))
                continue
            subfolders = []
            for entry in entries:
                if not _visible(entry.name):
                    continue
                path = os.path.join(current, entry.name)
                link = entry.is_symlink()
                real = os.path.realpath(path) if link else os.path.join(current_real, entry.name)
                if entry.is_dir():  # follows links
                    if not recursive:
                        continue
                    why = None
                    if link:
                        why = ("a loop: a link to a folder that holds it" if _inside(home, real)
                               else self._elsewhere(real, home))
                    if why is None and real in self.entered:
                        why = "a link to a folder already walked" if link else "a folder already walked through a link"
                    if why is not None:
                        self.skipped.append((path, why))
                        continue
                    self.entered.add(real)
                    subfolders.append((path, real))
                elif entry.name.lower().endswith(self.suffixes):
                    why = None
                    if link:
                        why = "a broken link" if not os.path.exists(real) else self._elsewhere(real, home)
                    if why is None and real in self.listed:
                        why = f"the same file as {self.listed[real]!r}"
                    if why is not None:
                        self.skipped.append((path, why))
                        continue
                    self.listed[real] = path
                    found.append(path)
            stack.extend(reversed(subfolders))
        return sorted(found)

    def warn(self, where) -> None:
        """One warning naming what was skipped, if anything was."""
        if not self.skipped:
            return
        shown = [f"{path!r} ({why})" for path, why in self.skipped[:10]]
        more = f"; and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
        warnings.warn(f"{len(self.skipped)} path(s) under {str(where)!r} skipped: {'; '.join(shown)}{more}",
                      UserWarning, stacklevel=3)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def find_images(folder, extensions=IMAGE_EXTENSIONS, recursive: bool = True) -> list[str]:
    """The image files under ``folder`` (see :meth:`ImageWalk.images`); a warning names
    any path skipped (link loops, files reached twice)."""
    walk = ImageWalk(extensions)
    found = walk.images(folder, recursive)
    walk.warn(folder)
    return found


def class_folders(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name (ImageFolder's class order)."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and _visible(p.name)), key=lambda p: p.name)
