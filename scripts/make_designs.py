"""Write ``src/hypnoscope/data/designs.npz``: the filter and window designs of the
band-power pipeline (:func:`hypnoscope.signal.bandpower.pipeline_designs`), designed now by MNE
and SciPy, so that staging loads them instead of importing ``scipy.signal``.

Usage::

    python scripts/make_designs.py

Run it only to add a design: the shipped models were trained on features computed with
the shipped designs, and ``tests/test_designs.py`` checks them against MNE and SciPy.
"""

from __future__ import annotations

import numpy as np

from hypnoscope.signal import bandpower
from hypnoscope.signal.filters import DESIGNS_FILE, designs_made
from hypnoscope.utils.files import atomic_path


def main() -> int:
    bandpower.pipeline_designs(shipped=False)
    designs = designs_made()
    with atomic_path(DESIGNS_FILE) as tmp:
        np.savez_compressed(tmp, **designs)
    for key, taps in designs.items():
        print(f"{len(taps):5d}  {key}")
    print(f"wrote {DESIGNS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
