"""The installed version of sktransfer (imports nothing of the package)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sktransfer")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

#: Where the HTML repr of an estimator links to (scikit-learn's ``_doc_link_template``):
#: its page in the API reference, which the docs' autosummary writes to ``generated/``.
DOC_LINK_TEMPLATE = "https://sktransfer.readthedocs.io/en/stable/generated/sktransfer.{estimator_name}.html"
