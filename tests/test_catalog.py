"""The catalog of built-in backbones (``sktransfer backbones``) says what building them says."""

from __future__ import annotations

from sktransfer import register_backbone
from sktransfer.backbones._catalog import _BUILTIN_PROVIDERS, describe_backbone, measure_shape
from sktransfer.backbones._registry import _ensure_loaded, _lookup, _names
from sktransfer.backbones._shapes import KNOWN_SHAPES

from .conftest import TINY, tiny_cnn


def _builtin_names():
    _ensure_loaded()
    return [name for name in sorted(_names) if _lookup(name).factory.__module__ in _BUILTIN_PROVIDERS]


def test_every_built_in_backbone_is_in_the_table_with_its_measured_shape():
    names = _builtin_names()
    assert len(names) > 50  # torchvision's classifiers, EfficientNet-Lite0, the text encoder
    measured = {name: measure_shape(name) for name in names}
    wrong = {name: shape for name, shape in measured.items() if KNOWN_SHAPES.get(name) != shape}
    assert not wrong, f"update sktransfer/backbones/_shapes.py with: {wrong}"


def test_a_plugin_that_replaces_a_built_in_name_is_measured_not_looked_up():
    assert KNOWN_SHAPES["resnet18"] == ("512", "224x224")
    previous = _lookup("resnet18").factory
    register_backbone("resnet18", tiny_cnn, overwrite=True)
    try:
        row = describe_backbone("resnet18")
    finally:
        register_backbone("resnet18", previous, overwrite=True)
    assert (row["features"], row["input"]) == ("16", "16x16")
    assert describe_backbone("resnet18")["features"] == "512"


def test_a_registered_plugin_is_measured():
    row = describe_backbone(TINY)
    assert (row["features"], row["input"], row["modality"]) == ("16", "16x16", "image")


def test_listing_every_backbone_builds_none_and_imports_no_scikit_learn():
    # what keeps `sktransfer backbones` at about the time of importing torch and torchvision
    import json
    import subprocess
    import sys

    probe = """
import contextlib, io, json, sys
import sktransfer.backbones._catalog as catalog
from sktransfer.cli import main

built, measure = [], catalog.measure_shape
catalog.measure_shape = lambda name: built.append(name) or measure(name)
with contextlib.redirect_stdout(io.StringIO()) as out:
    main(["backbones", "-q"])
print(json.dumps({"rows": len(out.getvalue().splitlines()), "built": built, "sklearn": "sklearn" in sys.modules}))
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["rows"] > 80 and found["built"] == [] and not found["sklearn"]
