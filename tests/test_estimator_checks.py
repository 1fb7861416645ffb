"""scikit-learn's estimator checks over every sktransfer estimator."""

import pytest
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from sktransfer import FineTunedClassifier, FineTunedRegressor, PretrainedFeatureExtractor

from .conftest import TINY

# The checks feed 2-D float arrays of arbitrary range; image_shape=(1, -1) reads
# each row as a one-pixel-high grayscale image and value_range=None takes the
# floats as they are, so every check runs through the real image path. The
# fine-tuned estimators train 3 epochs without augmentation: a horizontal flip would
# reverse the order of a row's features, which no tabular problem allows.
ESTIMATORS = [
    PretrainedFeatureExtractor(TINY, image_shape=(1, -1), value_range=None, batch_size=8),
    FineTunedClassifier(TINY, image_shape=(1, -1), value_range=None, max_epochs=3, lr=1e-2,
                        augment=None, batch_size=16),
    # 10 epochs: 3 reach R^2 0.14 on the checks' regression data, 10 reach 0.77 (> 0.5)
    FineTunedRegressor(TINY, image_shape=(1, -1), value_range=None, max_epochs=10, lr=1e-2,
                       augment=None, batch_size=16),
]

_BATCH_DEPENDENT = (
    "convolutions on the CPU (oneDNN) and GPU (cuDNN) pick kernels by batch size, so a "
    "sample's float32 outputs differ in the last bits (about 1e-7 to 1e-6) between a pass "
    "over the full set and one sample at a time; the check allows 1e-7. It passes when the "
    "kernels chosen happen to agree."
)
_BATCH_DEPENDENT_ORDER = (
    "predictions run in batches of batch_size, and shuffling the rows moves a sample between "
    "a full batch and the smaller last one, whose convolution kernels (chosen by batch size) "
    "round differently in the last bits; with batch_size >= n_samples the check passes."
)
_CHECKS_BATCH_DEPENDENT = {
    "check_methods_subset_invariance": _BATCH_DEPENDENT,
    "check_methods_sample_order_invariance": _BATCH_DEPENDENT_ORDER,
}
_STOCHASTIC_WEIGHTS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "training is stochastic mini-batch descent: a weight of 2 and a repeated row give the "
        "same expected gradient, but other batches, shuffles and step counts, so the two "
        "fitted networks differ by more than the check's tolerance"
    ),
}
EXPECTED_FAILURES = {
    "PretrainedFeatureExtractor": _CHECKS_BATCH_DEPENDENT,
    "FineTunedClassifier": {**_CHECKS_BATCH_DEPENDENT, **_STOCHASTIC_WEIGHTS},
    "FineTunedRegressor": {**_CHECKS_BATCH_DEPENDENT, **_STOCHASTIC_WEIGHTS},
}


def _expected_failures(estimator):
    return EXPECTED_FAILURES[type(estimator).__name__]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_param_validation(estimator):
    # not among parametrize_with_checks' checks in every scikit-learn version: run it here
    check_param_validation(type(estimator).__name__, estimator)
