"""scikit-learn's estimator checks over every sktransfer estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer import FineTunedClassifier, PretrainedFeatureExtractor

from .conftest import TINY

# The checks feed 2-D float arrays of arbitrary range; image_shape=(1, -1) reads
# each row as a one-pixel-high grayscale image and value_range=None takes the
# floats as they are, so every check runs through the real image path. The
# classifier trains 3 epochs without augmentation: a horizontal flip would
# reverse the order of a row's features, which no tabular problem allows.
ESTIMATORS = [
    PretrainedFeatureExtractor(TINY, image_shape=(1, -1), value_range=None, batch_size=8),
    FineTunedClassifier(TINY, image_shape=(1, -1), value_range=None, max_epochs=3, lr=1e-2,
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
EXPECTED_FAILURES = {
    "PretrainedFeatureExtractor": _CHECKS_BATCH_DEPENDENT,
    "FineTunedClassifier": _CHECKS_BATCH_DEPENDENT,
}


def _expected_failures(estimator):
    return EXPECTED_FAILURES[type(estimator).__name__]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
