"""hypnoscope: automated sleep staging from polysomnography."""

from .hypnogram import Hypnogram, read_hypnogram
from .stages import STAGES_3, STAGES_5, UNSCORED
from .staging import stage

__version__ = "0.1.0"

__all__ = ["Hypnogram", "read_hypnogram", "STAGES_5", "STAGES_3", "UNSCORED", "stage",
           "__version__"]
