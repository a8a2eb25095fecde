"""hypnoscope: automated sleep staging from polysomnography.

The public face: :func:`stage` a recording, :func:`read_hypnogram` a scoring, the
:class:`Hypnogram` value object, and the functions that work on hypnograms
(:func:`sleep_statistics`, :func:`compare_hypnograms`, :func:`plot_hypnogram`,
:func:`plot_hypnodensity`; imported on first use). Everything else lives in the
subpackage named after its concern: ``io``, ``signal``, ``models``, ``training``,
``evaluation``, ``staging``, ``live``, ``viz``, ``simulate`` and ``cli``.
"""

import importlib

from hypnoscope._version import __version__
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.stages import STAGES_3, STAGES_5, UNSCORED
from hypnoscope.staging.pipeline import stage

#: Public names imported on first use (their modules pull in pandas or matplotlib).
_LAZY = {"sleep_statistics": "hypnoscope.evaluation.sleepstats",
         "compare_hypnograms": "hypnoscope.evaluation.metrics",
         "plot_hypnogram": "hypnoscope.viz.plots",
         "plot_hypnodensity": "hypnoscope.viz.plots"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hypnoscope' has no attribute {name!r}")


__all__ = ["Hypnogram", "read_hypnogram", "STAGES_5", "STAGES_3", "UNSCORED", "stage",
           "sleep_statistics", "compare_hypnograms", "plot_hypnogram", "plot_hypnodensity",
           "__version__"]
