"""The whole scikit-learn estimator contract, with quick settings."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sktriplet import TripletEmbedder


@parametrize_with_checks(
    # device="cpu": check_fit_idempotent asks for bit-identical refits, which
    # only the CPU promises; on a GPU host "auto" would train on the GPU.
    [TripletEmbedder(epochs=2, hidden_layer_sizes=(16,), random_state=0, device="cpu")]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
