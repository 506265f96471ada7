"""sktriplet: scikit-learn-compatible embedding learning with the triplet loss.

``import sktriplet`` loads numpy and scikit-learn only; Keras and its backend load
when a model is first built or used.
"""

from . import metrics
from .estimator import TripletEmbedder
from .persistence import load, save

__all__ = ["TripletEmbedder", "load", "metrics", "save", "__version__"]
__version__ = "0.1.0"
