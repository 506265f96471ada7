"""All of sktriplet's Keras code: the triplet loss, the Siamese model, the encoders.

Importing this subpackage imports Keras (and its backend); ``import sktriplet``
does not.
"""

from .losses import TripletLoss, mine_triplets, pairwise_distances, triplet_loss
from .models import SiameseModel, build_conv_encoder, build_mlp_encoder, copy_encoder

__all__ = [
    "SiameseModel",
    "TripletLoss",
    "build_conv_encoder",
    "build_mlp_encoder",
    "copy_encoder",
    "mine_triplets",
    "pairwise_distances",
    "triplet_loss",
]
