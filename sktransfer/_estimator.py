"""What both kinds of estimator share: the fit context, the modality, checking inputs, state."""

from __future__ import annotations

import dataclasses
import functools
import inspect

from sklearn.utils.validation import validate_data

from ._version import DOC_LINK_TEMPLATE
from .fitting.params import validate_parameter_constraints, validate_params
from .modalities import MODALITIES, Modality, for_backbone
from .persistence.state import restore_state


def fit_context(fit):
    """Decorate an estimator's ``fit``, as scikit-learn's ``_fit_context`` does: every
    parameter check (the table, the estimator's own, its modality's) runs first, before
    any data is looked at or any weights file is opened; and when ``fit`` raises (bad data
    found while training, an interrupt before the epochs), the estimator's attributes are
    left as they were before the call, never half-fitted with the new classes and the old
    network. (A ``warm_start`` fit trains the fitted network in place: one that raises
    while training keeps the weights it reached.)"""

    @functools.wraps(fit)
    def guarded(self, *args, **kwargs):
        before = dict(self.__dict__)
        try:
            self._check_params()
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    return guarded


class TransferEstimator:
    """Mixin of the estimators (left of ``BaseEstimator``): parameter checks, the modality of
    the backbone, inputs checked as scikit-learn records them, and the state rules.

    Subclasses declare ``_parameter_constraints``, ``_required_state`` and
    ``_fitted_state`` (what a saved state may hold besides the parameters), and may add
    checks in ``_check_own_params``.
    """

    # the HTML repr's "?" icon opens this class's page of the API reference
    _doc_link_module = "sktransfer"
    _doc_link_template = DOC_LINK_TEMPLATE

    def _modality(self, spec=None) -> Modality:
        """The modality of the ``backbone`` parameter, or the one ``spec`` resolved (which a
        loaded estimator finds even where its model folder is gone)."""
        return for_backbone(self.backbone) if spec is None else MODALITIES[spec.modality]

    def _check_params(self) -> None:
        params, owner = self.get_params(deep=False), type(self).__name__
        validate_params(self._parameter_constraints, params, owner)
        self._modality().check_params(params, owner)
        self._check_own_params(params, owner)

    def _check_own_params(self, params: dict, owner: str) -> None:
        """Checks a constraints table cannot express, of this estimator's own parameters."""

    def _check_input(self, X, spec, fitted=None, *, what: str = "X"):
        """``X`` checked by the modality: ``(checked, signature)``. 2-D tables of pixels go
        through scikit-learn's ``validate_data``, which records ``n_features_in_`` and
        ``feature_names_in_`` on a new fit and checks them otherwise."""
        reset = fitted is None
        if not reset:
            spec = self._prediction_spec(spec)

        def rows(table):
            return validate_data(self, table, reset=reset, dtype="numeric", accept_sparse=False)

        checked, signature = self._modality(spec).validate(X, spec, fitted, owner=type(self).__name__, what=what,
                                                       rows=rows)
        if reset and signature.kind != "rows":
            for attr in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attr, None)
        return checked, signature

    def _prediction_spec(self, spec):
        """``spec`` with the parameters that are read when predicting, checked now (they can
        change after ``fit``): ``sample_rate`` describes the waveforms given, not the model;
        ``tta`` is checked here and read by the estimator."""
        owner = type(self).__name__
        current = {name: getattr(self, name) for name in ("sample_rate", "tta") if name in self._parameter_constraints}
        validate_parameter_constraints({name: self._parameter_constraints[name] for name in current}, current, owner)
        self._modality(spec).check_params(current, owner)
        if current.get("sample_rate") is None:
            return spec
        return dataclasses.replace(spec, sample_rate=current["sample_rate"])

    def _restore(self, state):
        """``(attributes, network weights)`` of a saved ``state``, checked against what this
        class declares (see :func:`~sktransfer.persistence.state.restore_state`), its
        parameters against their constraints table."""
        owner = type(self).__name__
        declared = {*self._get_param_names(), *self._fitted_state}
        attributes, network = restore_state(state, owner, declared, self._required_state)
        # a parameter newer than the file (sample_rate, tta...) takes its default
        defaults = inspect.signature(type(self).__init__).parameters
        for name in self._get_param_names():
            attributes.setdefault(name, defaults[name].default)
        params = {name: attributes[name] for name in self._parameter_constraints if name in attributes}
        validate_parameter_constraints({name: self._parameter_constraints[name] for name in params}, params, owner)
        return attributes, network
