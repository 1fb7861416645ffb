"""The repository stays true to itself: CI runs the README's tests, docs cover the API."""

import inspect
import re
from pathlib import Path

import sktransfer

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert "examples/frozen_features_demo.py" in demo and "-m venv .venv-demo" in demo
    assert "pytest" in tests and "-m venv .venv-test" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_public_names_are_documented_with_examples():
    api = (ROOT / "docs" / "api.rst").read_text()
    for name in sktransfer.__all__:
        if name == "__version__":
            continue
        assert re.search(rf"^\s+{name}$", api, re.M), f"{name} missing from docs/api.rst"
        if isinstance(getattr(sktransfer, name), list):  # a constant: documented in its module
            continue
        doc = inspect.getdoc(getattr(sktransfer, name)) or ""
        assert "Examples\n--------" in doc, f"{name} has no Examples section"
