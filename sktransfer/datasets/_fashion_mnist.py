"""Fashion-MNIST from the IDX files of Debian's ``dataset-fashion-mnist`` package."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(directory=None) -> Bunch:
    """Load Fashion-MNIST from its IDX files (60,000 train and 10,000 test images).

    Parameters
    ----------
    directory : str or path, optional
        Folder holding ``train-images-idx3-ubyte.gz`` and the three other
        files. Defaults to ``$SKTRANSFER_FASHION_MNIST`` or, failing that,
        where Debian's ``dataset-fashion-mnist`` package puts them.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``X_train`` (60000, 28, 28) uint8, ``y_train`` (60000,), ``X_test``
        (10000, 28, 28) uint8, ``y_test`` (10000,) and ``target_names``.

    Raises
    ------
    FileNotFoundError
        When the files are missing, with the command that installs them.

    Examples
    --------
    >>> from sktransfer.datasets import load_fashion_mnist
    >>> data = load_fashion_mnist()  # doctest: +SKIP
    >>> data.X_train.shape  # doctest: +SKIP
    (60000, 28, 28)
    """
    folder = Path(directory or os.environ.get("SKTRANSFER_FASHION_MNIST") or FASHION_MNIST_DIR)
    files = {
        "X_train": "train-images-idx3-ubyte.gz",
        "y_train": "train-labels-idx1-ubyte.gz",
        "X_test": "t10k-images-idx3-ubyte.gz",
        "y_test": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [name for name in files.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST files {missing} not found in {str(folder)!r}; on Debian install them "
            "with `apt-get install dataset-fashion-mnist`, or pass directory="
        )
    return Bunch(**{key: _read_idx(folder / name) for key, name in files.items()},
                 target_names=list(FASHION_MNIST_CLASSES))
