"""sktriplet: scikit-learn-compatible embedding learning with the triplet loss.

``import sktriplet`` loads numpy and scikit-learn only; Keras and its backend load
when a model is first built or used.
"""

from . import metrics
from .estimator import TripletEmbedder

__all__ = ["TripletEmbedder", "metrics", "__version__"]
__version__ = "0.1.0"
