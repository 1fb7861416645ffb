"""Sphinx configuration for sktransfer's documentation."""

project = "sktransfer"
author = "the sktransfer developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "numpydoc"]
autosummary_generate = True
numpydoc_show_class_members = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
