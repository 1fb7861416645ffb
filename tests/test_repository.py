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


def test_readme_setup_commands_are_the_demo_the_tests_and_the_docs_and_ci_runs_the_last_two():
    commands = _readme_commands()
    assert len(commands) == 3, commands
    demo, tests, docs = commands
    assert demo.endswith("/bin/sktransfer demo") and "-m venv .venv-demo" in demo
    assert "pytest" in tests and "-m venv .venv-test" in tests
    assert "sphinx-build -W" in docs
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci
    # CI reuses the test environment for the docs: the same install, then the same build
    assert docs.split(" && ", 1)[1] in ci


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


def test_every_public_function_and_class_of_the_submodules_has_an_api_page():
    import sktransfer.cli
    import sktransfer.datasets
    import sktransfer.display

    api = (ROOT / "docs" / "api.rst").read_text()
    for module, names in ((sktransfer.datasets, sktransfer.datasets.__all__),
                          (sktransfer.display, ["TrainingCurveDisplay", "EmbeddingDisplay", "LRFinderDisplay",
                                                "MisclassifiedDisplay", "SaliencyDisplay", "plot_confusion_matrix"]),
                          (sktransfer.cli, ["main", "build_parser"])):
        short = module.__name__.removeprefix("sktransfer.")
        for name in names:
            if callable(getattr(module, name)):
                assert re.search(rf"^\s+{short}\.{name}$", api, re.M), f"{short}.{name} missing from docs/api.rst"


def test_every_executed_example_is_in_the_gallery_and_the_estimators_link_to_their_pages():
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert '"filename_pattern": r"/plot_"' in conf and '"abort_on_example_error": True' in conf
    examples = sorted(p.name for p in (ROOT / "examples").glob("*.py"))
    # text_classification.py is shown, not run, by the build: tests/test_text.py runs it
    assert [e for e in examples if not e.startswith("plot_")] == ["text_classification.py"]
    api = (ROOT / "docs" / "api.rst").read_text()
    for estimator in (sktransfer.FineTunedClassifier(), sktransfer.PretrainedFeatureExtractor()):
        name = type(estimator).__name__
        link = estimator._get_doc_link()
        assert link.endswith(f"/generated/sktransfer.{name}.html")  # autosummary's page for it
        assert f'href="{link}"' in estimator._repr_html_()
        assert re.search(rf"^\s+{name}$", api, re.M)
