"""The example plugin package installs with pip (no network) and works end to end: found
through its entry point, used in a Pipeline, passing its own contract test."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sktransfer-plugin-example"

USE = """
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sktransfer import PretrainedFeatureExtractor, list_backbones

assert list_backbones("example/*") == ["example/tiny-net"], list_backbones("example/*")
rng = np.random.default_rng(0)
X = rng.integers(0, 128, (40, 32, 32, 3), dtype=np.uint8)
y = np.arange(40) % 2
X[y == 1] += 100
model = make_pipeline(PretrainedFeatureExtractor("example/tiny-net"), LogisticRegression()).fit(X, y)
print("score", model.score(X, y))
"""


def test_example_plugin_installs_and_works(tmp_path):
    pytest.importorskip("setuptools", minversion="70")
    source = shutil.copytree(EXAMPLE, tmp_path / "src")  # the build writes next to its sources
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--target", str(site), str(source)], check=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    used = subprocess.run([sys.executable, "-c", USE], env=env, capture_output=True, text=True, timeout=300)
    assert used.returncode == 0, used.stderr
    assert float(used.stdout.split()[-1]) == 1.0
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                             str(source / "tests")], env=env, capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "1 passed" in tested.stdout
