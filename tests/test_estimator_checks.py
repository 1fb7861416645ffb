"""scikit-learn's estimator checks over every sktransfer estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktransfer import PretrainedFeatureExtractor

from .conftest import TINY

# The checks feed 2-D float arrays of arbitrary range; image_shape=(1, -1) reads
# each row as a one-pixel-high grayscale image and value_range=None takes the
# floats as they are, so every check runs through the real image path.
ESTIMATORS = [
    PretrainedFeatureExtractor(TINY, image_shape=(1, -1), value_range=None, batch_size=8),
]

EXPECTED_FAILURES = {
    "PretrainedFeatureExtractor": {},
}


def _expected_failures(estimator):
    return EXPECTED_FAILURES[type(estimator).__name__]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
