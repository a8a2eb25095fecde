"""Signal processing of PSG recordings, from µV signals to model inputs.

Modules: :mod:`~hypnoscope.signal.filters` (the zero-phase FIR engine, its designs and the
role band tables), :mod:`~hypnoscope.signal.spectral` (Welch PSD, spectrograms),
:mod:`~hypnoscope.signal.normalize` (per-night scaling), :mod:`~hypnoscope.signal.epochs`
(30-s epochs, crop to the sleep period), :mod:`~hypnoscope.signal.preprocessing` (the
continuous preprocessing config and pipeline), :mod:`~hypnoscope.signal.checks` (channel
checks run while reading: EMG-like EOG), :mod:`~hypnoscope.signal.quality` (per-epoch
signal quality), :mod:`~hypnoscope.signal.nights` (recordings loaded into cached
nights), :mod:`~hypnoscope.signal.ica` (ICA eye-artefact removal),
:mod:`~hypnoscope.signal.channel_choice` (the band-power models' channels),
:mod:`~hypnoscope.signal.bandpower` (the band-power pipeline and features),
:mod:`~hypnoscope.signal.features` (handcrafted epoch features, night context) and
:mod:`~hypnoscope.signal.views` (the deep models' input views).
"""
