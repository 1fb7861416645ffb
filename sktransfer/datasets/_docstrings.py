"""Texts that are on every machine: the docstrings of installed libraries, labelled by library."""

from __future__ import annotations

import importlib
import inspect
import re

import numpy as np
from sklearn.utils import Bunch

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
