"""Sphinx configuration for sktransfer's documentation.

Sphinx, because the docstrings are numpydoc (as scikit-learn's), autosummary gives every
public name its page, sphinx-gallery runs ``examples/`` and shows their figures (as
scikit-learn's gallery does), and sphinx-argparse writes the command-line reference from
the parser itself. CI builds with ``-W``: a warning fails the build.
"""

import os

from sktransfer import __version__

project = "sktransfer"
author = "the sktransfer developers"
copyright = "the sktransfer developers"
release = __version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
]
autosummary_generate = True
templates_path = ["_templates"]
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "alabaster"
html_theme_options = {"description": "Transfer learning as scikit-learn estimators", "fixed_sidebar": True}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # plot_*.py run during the build; the others (text_classification.py, run by the
    # tests) are shown with their code
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"sktransfer-plugin-example|__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "run_stale_examples": True,
    "show_memory": False,
    "plot_gallery": os.environ.get("SKTRANSFER_DOCS_RUN_EXAMPLES", "True"),
}


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Leave out what scikit-learn's base classes give every estimator (get_params,
    set_params, score, set_output, the set_*_request methods): scikit-learn documents
    them, and their docstrings point into its own documentation."""
    module = getattr(obj, "__module__", "") or ""
    return True if module.startswith("sklearn.") else skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
