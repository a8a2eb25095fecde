"""hypnoscope: automated sleep staging from polysomnography."""

from hypnoscope.hypnogram import Hypnogram, read_hypnogram
from hypnoscope.stages import STAGES_3, STAGES_5, UNSCORED
from hypnoscope.staging.pipeline import stage

__version__ = "0.1.0"

__all__ = ["Hypnogram", "read_hypnogram", "STAGES_5", "STAGES_3", "UNSCORED", "stage",
           "__version__"]
