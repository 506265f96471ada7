"""The whole scikit-learn estimator contract, with quick settings."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktriplet import TripletEmbedder


@parametrize_with_checks(
    [TripletEmbedder(epochs=2, hidden_layer_sizes=(16,), random_state=0)]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
