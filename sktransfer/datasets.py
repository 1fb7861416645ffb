"""Real datasets that need no download at run time: images (Fashion-MNIST from Debian's
package) and texts (docstrings of installed libraries, labelled by library)."""

from __future__ import annotations

import gzip
import importlib
import inspect
import os
import re
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


#: The libraries, and the modules of each, whose docstrings make the text dataset.
DOCSTRING_SOURCES = {
    "numpy": ("numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.ma", "numpy.polynomial"),
    "scikit-learn": ("sklearn.linear_model", "sklearn.ensemble", "sklearn.preprocessing", "sklearn.metrics",
                     "sklearn.model_selection", "sklearn.cluster", "sklearn.decomposition", "sklearn.svm",
                     "sklearn.neighbors", "sklearn.feature_extraction.text", "sklearn.utils"),
    "torch": ("torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.linalg", "torch.fft",
              "torch.distributions", "torch.utils.data"),
    "pillow": ("PIL.Image", "PIL.ImageOps", "PIL.ImageFilter", "PIL.ImageDraw", "PIL.ImageEnhance",
               "PIL.ImageFont", "PIL.ImageColor", "PIL.ImageChops"),
}
_NAMES = re.compile(r"\b(numpy|np|scikit-learn|sklearn|torch|pytorch|pillow|PIL)\b", re.IGNORECASE)


def _summary(doc: str) -> str:
    """The first paragraph of a docstring, on one line."""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def load_library_docstrings(sources: dict = None, min_length: int = 40, max_per_class: int = 400) -> Bunch:
    """The first paragraphs of the docstrings of installed libraries, labelled by library.

    A real, unedited text classification set that is on every machine with the
    libraries: which library does a piece of API documentation come from? The
    public functions and classes of each library's main modules (and the methods
    of those classes) give one text each; the library names themselves are
    masked as ``"LIB"`` (they would give the answer away), duplicates and texts
    shorter than ``min_length`` characters are dropped. The texts depend on the
    installed versions, which ``versions`` records (and on opt-in experimental
    scikit-learn estimators enabled before the call, which add theirs).

    Parameters
    ----------
    sources : dict or None, default=None
        ``{label: module names}``; None takes :data:`DOCSTRING_SOURCES`
        (numpy, scikit-learn, torch, pillow). Missing modules are skipped.
    min_length : int, default=40
        Shortest text kept, in characters.
    max_per_class : int, default=400
        Texts kept per library (the first in sorted order of qualified name).

    Returns
    -------
    data : sklearn.utils.Bunch
        ``data`` (list of str), ``target`` (int array), ``target_names``,
        ``names`` (the qualified name of each text's object) and ``versions``.

    Examples
    --------
    >>> from sktransfer.datasets import load_library_docstrings
    >>> docs = load_library_docstrings(max_per_class=50)
    >>> len(docs.data) == len(docs.target)
    True
    >>> docs.target_names.tolist()
    ['numpy', 'scikit-learn', 'torch', 'pillow']
    """
    sources = DOCSTRING_SOURCES if sources is None else sources
    texts, targets, names, seen, versions = [], [], [], set(), {}
    for label, (library, modules) in enumerate(sources.items()):
        found = {}
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            top = importlib.import_module(module_name.split(".")[0])
            versions[library] = getattr(top, "__version__", "unknown")
            # the module's declared API: its namespace also holds whatever other imports added
            public = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
            for name in sorted(set(public)):
                try:
                    obj = getattr(module, name)
                except (AttributeError, ImportError):  # declared, but opt-in (experimental) or gone
                    continue
                if name.startswith("_") or not (inspect.isclass(obj) or callable(obj)):
                    continue
                home = getattr(obj, "__module__", None) or ""
                if home.split(".")[0] != top.__name__ or "._C" in home:  # re-exports, bindings
                    continue
                members = [(f"{module_name}.{name}", obj)]
                if inspect.isclass(obj):
                    members += [(f"{module_name}.{name}.{m}", v) for m, v in sorted(vars(obj).items())
                                if not m.startswith("_") and callable(v)]
                for qualified, member in members:
                    doc = inspect.getdoc(member) if isinstance(getattr(member, "__doc__", None), str) else None
                    text = _NAMES.sub("LIB", _summary(doc)) if doc else ""
                    if "._C" in text or "::" in text:  # signatures of compiled bindings, not prose
                        continue
                    if len(text) >= min_length and text not in seen:
                        seen.add(text)
                        found[qualified] = text
        for qualified in sorted(found)[:max_per_class]:
            texts.append(found[qualified])
            targets.append(label)
            names.append(qualified)
    return Bunch(data=texts, target=np.array(targets), target_names=np.array(list(sources)),
                 names=names, versions=versions)
