"""Neural-network building blocks shared by every model (torch only)."""

from wavegen.nn.conv import CausalConv1d, receptive_field
from wavegen.nn.heads import CategoricalHead, MixtureOfLogisticsHead, OutputHead, build_head

__all__ = [
    "CausalConv1d",
    "receptive_field",
    "CategoricalHead",
    "MixtureOfLogisticsHead",
    "OutputHead",
    "build_head",
]
