"""All of sktriplet's Keras code: the triplet loss, the Siamese model, the encoders.

Importing this subpackage imports Keras (and its backend); ``import sktriplet``
does not.
"""

from .encoders import build_conv_encoder, build_mlp_encoder, copy_encoder
from .losses import (
    TripletLoss,
    distance_matrix,
    triplet_hinge_totals,
    triplet_loss,
    triplet_slots,
)
from .models import SiameseModel

__all__ = [
    "SiameseModel",
    "TripletLoss",
    "build_conv_encoder",
    "build_mlp_encoder",
    "copy_encoder",
    "distance_matrix",
    "triplet_hinge_totals",
    "triplet_loss",
    "triplet_slots",
]
