"""Folders of labelled images (torchvision's ImageFolder layout), and a small real one to
write: scikit-learn's digits as images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..data.files import IMAGE_EXTENSIONS, ImageWalk, class_folders


def load_image_folder(path, extensions=IMAGE_EXTENSIONS) -> Bunch:
    """Read a folder with one sub-folder of images per class.

    The layout of torchvision's ``ImageFolder``: ``path/<class>/.../<image>``.
    Classes are the sub-folders' names in sorted order; each class holds the
    image files anywhere below its folder. Hidden files and folders (names
    starting with ``"."``) are skipped. Links are followed, but each real file
    is counted once, in the class whose folder holds it: a link that loops
    (``ln -s .. cat/up``), a link from one class's folder into another's, a
    second link to a folder or file already found, and a broken link are
    skipped, and a warning names each. Nothing is decoded: the paths go
    straight into the estimators, which read them in batches.

    Parameters
    ----------
    path : str or path
        The folder.
    extensions : sequence of str, default=IMAGE_EXTENSIONS
        File name extensions read as images, compared case-insensitively.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``paths`` (object array of str, sorted by class then name),
        ``target`` (int array, the index of each path's class),
        ``target_names`` (array of str, the class names) and ``folder`` (the
        folder's absolute path).

    Raises
    ------
    FileNotFoundError
        The folder does not exist.
    NotADirectoryError
        ``path`` is a file.
    ValueError
        The folder has no class sub-folders, has images directly inside it
        (they would belong to no class), or a class folder holds no images.

    Examples
    --------
    >>> import tempfile
    >>> from sktransfer.datasets import load_digits_images, load_image_folder, make_image_folder
    >>> digits = load_digits_images()
    >>> folder = make_image_folder(tempfile.mkdtemp() + "/digits", digits.images[:20],
    ...                            digits.target[:20], digits.target_names)
    >>> data = load_image_folder(folder)
    >>> data.target_names.tolist()
    ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
    >>> len(data.paths), data.target[:4].tolist()
    (20, [0, 0, 1, 1])
    """
    folder = Path(os.fspath(path)).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"image folder not found: {str(folder)!r}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} is a file, not a folder of class sub-folders")
    classes = class_folders(folder)
    walk = ImageWalk(extensions, root=folder)
    walk.claim(classes)
    strays = walk.images(folder, recursive=False)
    layout = ("expected one sub-folder of images per class "
              f"({str(folder)}/<class>/<image>, as torchvision's ImageFolder)")
    if strays:
        raise ValueError(f"{len(strays)} image(s) directly in {str(folder)!r} belong to no class, "
                         f"e.g. {os.path.basename(strays[0])!r}; {layout}")
    if not classes:
        raise ValueError(f"{str(folder)!r} has no class sub-folders; {layout}")
    found = [walk.images(class_folder) for class_folder in classes]
    walk.warn(folder)
    for class_folder, images in zip(classes, found):
        if not images:
            raise ValueError(
                f"class folder {str(class_folder)!r} holds no images "
                f"(looked for {', '.join(extensions)}); remove it or add images"
            )
    paths = [path for images in found for path in images]
    target = [index for index, images in enumerate(found) for _ in images]
    return Bunch(paths=np.array(paths, dtype=object), target=np.array(target),
                 target_names=np.array([c.name for c in classes]), folder=str(folder.resolve()))


def load_digits_images() -> Bunch:
    """scikit-learn's digits as 8x8 uint8 grayscale images.

    The 1,797 handwritten digits of :func:`sklearn.datasets.load_digits`, with
    their 0-16 intensities scaled to 0-255. Ships with scikit-learn: no download.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``images`` (1797, 8, 8) uint8, ``target`` (1797,) int and
        ``target_names`` (the strings ``"0"`` to ``"9"``).

    Examples
    --------
    >>> from sktransfer.datasets import load_digits_images
    >>> digits = load_digits_images()
    >>> digits.images.shape, digits.images.dtype, int(digits.images.max())
    ((1797, 8, 8), dtype('uint8'), 255)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return Bunch(images=images, target=digits.target, target_names=np.array([str(t) for t in digits.target_names]))


def make_image_folder(directory, images, target, target_names=None, *, format: str = "png") -> Path:
    """Write images as a labelled folder, one sub-folder per class (ImageFolder layout).

    Parameters
    ----------
    directory : str or path
        Where to write; created. An existing, non-empty folder is refused, so
        nothing is overwritten.
    images : array of shape (n, H, W) or (n, H, W, 3), uint8
        The images.
    target : array-like of shape (n,)
        Each image's class: an index into ``target_names``, or the class name
        itself when ``target_names`` is None.
    target_names : sequence of str, optional
        Class names, which become the sub-folders' names.
    format : {"png", "jpeg", "bmp"}, default="png"
        The image file format.

    Returns
    -------
    directory : pathlib.Path
        The folder written: ``directory/<class>/<index>.<format>``, the index
        zero-padded so that names sort in input order.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sktransfer.datasets import make_image_folder
    >>> images = np.zeros((3, 8, 8), dtype=np.uint8)
    >>> folder = make_image_folder(tempfile.mkdtemp() + "/out", images, ["cat", "dog", "cat"])
    >>> sorted(p.name for p in folder.iterdir())
    ['cat', 'dog']
    """
    from PIL import Image

    if format.upper() not in ("PNG", "JPEG", "BMP"):
        raise ValueError(f"format must be 'png', 'jpeg' or 'bmp', got {format!r}")
    images = np.asarray(images)
    target = np.asarray(target)
    if len(images) == 0:
        raise ValueError("no images to write")
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
        raise ValueError(f"images must be uint8 of shape (n, H, W) or (n, H, W, 3), got {images.dtype} "
                         f"of shape {images.shape}")
    if target.shape != (len(images),):
        raise ValueError(f"target must have one entry per image ({len(images)}), got shape {target.shape}")
    if target_names is None:
        names = target.astype(str)
    else:
        target_names = np.asarray(target_names).astype(str)
        if target.dtype.kind not in "iu" or target.min() < 0 or target.max() >= len(target_names):
            raise ValueError(f"with target_names, target must hold indices in [0, {len(target_names)}); "
                             f"got {target.dtype} values from {target.min()!r} to {target.max()!r}")
        names = target_names[target]
    for name in np.unique(names).tolist():
        if not name or name.startswith(".") or os.sep in name or (os.altsep and os.altsep in name):
            raise ValueError(f"class name {name!r} cannot be a folder name")
    folder = Path(os.fspath(directory)).expanduser()
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{str(folder)!r} exists and is not empty; pick a new folder")
    width = len(str(max(len(images) - 1, 0)))
    for i, (image, name) in enumerate(zip(images, names)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze(-1) if image.ndim == 3 and image.shape[2] == 1 else image).save(
            folder / name / f"{i:0{width}d}.{format}", format=format.upper())
    return folder
