"""Numpydoc validation of every public name, as scikit-learn's own test_docstrings does."""

import inspect

import pytest

import sktransfer
import sktransfer.backbones
import sktransfer.datasets
import sktransfer.utils

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# Structure and content are checked; wording style (capitals, full stops, "See Also",
# extended summaries) is left to review.
CHECKED = {
    "GL08",  # no docstring
    "SS01", "SS03",  # a one-line summary, ending with a period
    "PR01", "PR02", "PR03", "PR07", "PR10",  # every parameter documented, in order, with text
    "RT01",  # a Returns section where something is returned
    "EX01",  # an Examples section (public classes and functions)
}


def _public_names():
    modules = {"sktransfer": sktransfer, "sktransfer.backbones": sktransfer.backbones,
               "sktransfer.datasets": sktransfer.datasets, "sktransfer.utils": sktransfer.utils}
    seen = set()
    for module_name, module in modules.items():
        names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or obj in seen:
                continue
            if not obj.__module__.startswith("sktransfer"):
                continue
            seen.add(obj)
            path = f"{module_name}.{name}"
            yield path
            if inspect.isclass(obj):
                for method, value in vars(obj).items():
                    if not method.startswith("_") and inspect.isfunction(value):
                        yield f"{path}.{method}"


@pytest.mark.parametrize("path", sorted(_public_names()))
def test_docstring(path):
    result = numpydoc_validate.validate(path)
    method = path.count(".") > 1 and path.rsplit(".", 2)[-2][0].isupper()
    errors = [
        f"{code}: {message}" for code, message in result["errors"]
        if code in CHECKED and not (method and code == "EX01")
    ]
    assert not errors, f"{path}:\n" + "\n".join(errors)
