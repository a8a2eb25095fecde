"""Reading and writing files: recordings, hypnograms, downloads.

Modules: :mod:`~hypnoscope.io.psg` (the PSG reader: channels by role, one rate, µV),
:mod:`~hypnoscope.io.channels` (channel roles from names, derivations),
:mod:`~hypnoscope.io.units` (the units rule), :mod:`~hypnoscope.io.recordings` (finding
recordings and pairing them with their hypnograms), :mod:`~hypnoscope.io.hypnograms`
(hypnogram readers and writers), :mod:`~hypnoscope.io.nsrr_xml` (NSRR scoring XML),
:mod:`~hypnoscope.io.bids` (BIDS datasets) and :mod:`~hypnoscope.io.fetch` (downloads).
"""
