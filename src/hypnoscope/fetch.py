"""Sleep-EDF Expanded (PhysioNet ``sleep-edfx`` 1.0.0) catalog and downloader.

Subsets
-------
``"sc"`` (alias ``"sleep-cassette"``, ``"sleep-edf-78"``)
    The sleep-cassette study: 78 healthy subjects (numbers 0-82; 39, 68, 69, 78 and 79 do
    not exist), 153 nights. This is the "Sleep-EDF-78" set of the literature.
``"sleep-edf-20"``
    Sleep-cassette subjects 0-19, 39 nights (subject 13 has only one night), the
    "Sleep-EDF-20" set (the 2013 release) used with 20-fold cross-validation.
``"st"`` (alias ``"sleep-telemetry"``)
    The sleep-telemetry (temazepam) study: 22 subjects (numbers 1-24), 44 nights.

Subject and night numbers are the ``ss`` and ``N`` digits of the file names
``SC4ssN??-PSG.edf`` / ``ST7ssN??-PSG.edf``; the PSG and hypnogram of a night differ in the
last letters (``SC4001E0-PSG.edf`` / ``SC4001EC-Hypnogram.edf``).

Integrity
---------
The shipped catalog (``hypnoscope/data/sleepedf_catalog.csv``) was generated with
:func:`build_catalog` from PhysioNet's own ``RECORDS`` and ``SHA256SUMS.txt`` and holds a
SHA-256 checksum for every file. Downloads go through :mod:`pooch`, which writes to a
temporary file and only moves it into the cache when the checksum matches, so a cached
file is always complete; files already in the cache with the right checksum are not
downloaded again (re-running an interrupted fetch resumes at the first missing file).
A catalog row without a checksum (e.g. a custom catalog) is still fetchable: the file is
then verified by its EDF header instead (``0`` version field and a file size equal to
header bytes + data records x record size), which catches truncated or non-EDF downloads
but not silently altered content.

Licence: Open Data Commons Attribution v1.0; cite Kemp et al., IEEE TBME 47(9) 2000 and
Goldberger et al., Circulation 101(23) 2000 when reporting results on Sleep-EDF.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .utils import progress, write_text_atomic

logger = logging.getLogger(__name__)

#: PhysioNet location of Sleep-EDF Expanded 1.0.0.
SLEEPEDF_URL = "https://physionet.org/files/sleep-edfx/1.0.0/"

#: Subset names accepted by :func:`fetch_sleepedf` (aliases map to the canonical name).
SUBSETS = {"sc": "sc", "sleep-cassette": "sc", "sleep-edf-78": "sc",
           "sleep-edf-20": "sleep-edf-20", "st": "st", "sleep-telemetry": "st"}

_CATALOG_FILE = Path(__file__).with_name("data") / "sleepedf_catalog.csv"
_CATALOG_COLUMNS = ["subset", "subject", "night", "record", "psg_file", "psg_sha256",
                    "hypnogram_file", "hypnogram_sha256"]
_NAME_RE = re.compile(r"^(?P<study>SC4|ST7)(?P<subject>\d\d)(?P<night>\d)")


class FetchError(RuntimeError):
    """A download failed or a downloaded file did not verify."""


@dataclass(frozen=True)
class CatalogEntry:
    """One Sleep-EDF night: PSG and hypnogram paths relative to the database root."""

    subset: str  # "sc" or "st"
    subject: int
    night: int
    record: str  # e.g. "SC4001"
    psg_file: str  # e.g. "sleep-cassette/SC4001E0-PSG.edf"
    psg_sha256: str | None
    hypnogram_file: str
    hypnogram_sha256: str | None


def default_data_dir() -> Path:
    """Cache folder of the Sleep-EDF files: ``$HYPNOSCOPE_DATA/sleep-edfx`` if the
    variable is set, else ``~/hypnoscope_data/sleep-edfx``."""
    root = os.environ.get("HYPNOSCOPE_DATA")
    return Path(root).expanduser() / "sleep-edfx" if root else \
        Path.home() / "hypnoscope_data" / "sleep-edfx"


# ---------------------------------------------------------------------- catalog
def build_catalog(records: str | os.PathLike, sha256sums: str | os.PathLike,
                  ) -> list[CatalogEntry]:
    """Build the night catalog from PhysioNet's ``RECORDS`` and ``SHA256SUMS.txt``.

    ``RECORDS`` lists the PSG files (``sleep-cassette/SC4001E0-PSG.edf``, one a line);
    ``SHA256SUMS.txt`` holds ``<sha256> <path>`` lines for every file, from which the
    hypnogram of each PSG is found (same ``SC4ssN`` record, ``-Hypnogram.edf``). A PSG
    missing from the checksum list gets ``None`` (verified by EDF header on download).

    Raises
    ------
    ValueError
        If a PSG name is not Sleep-EDF style or has no unique hypnogram.
    """
    sums: dict[str, str] = {}
    for line in Path(sha256sums).read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    hyps: dict[str, list[str]] = {}
    for name in sums:
        if name.endswith("-Hypnogram.edf"):
            hyps.setdefault(_record_of(name), []).append(name)
    entries = []
    for line in Path(records).read_text().splitlines():
        psg = line.strip()
        if not psg or not psg.endswith("-PSG.edf"):
            continue
        record = _record_of(psg)
        m = _NAME_RE.match(record)
        cands = hyps.get(record, [])
        if len(cands) != 1:
            raise ValueError(f"{psg}: expected exactly one hypnogram for record {record} in "
                             f"{sha256sums}, found {cands}")
        entries.append(CatalogEntry(
            subset="sc" if m.group("study") == "SC4" else "st",
            subject=int(m.group("subject")), night=int(m.group("night")), record=record,
            psg_file=psg, psg_sha256=sums.get(psg), hypnogram_file=cands[0],
            hypnogram_sha256=sums.get(cands[0])))
    if not entries:
        raise ValueError(f"{records}: no '*-PSG.edf' entry found")
    return sorted(entries, key=lambda e: (e.subset, e.subject, e.night))


def _record_of(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    m = _NAME_RE.match(base)
    if not m:
        raise ValueError(f"{name!r} is not a Sleep-EDF file name (expected SC4ssN... or "
                         "ST7ssN...)")
    return m.group(0)


def write_catalog(entries: Iterable[CatalogEntry], path: str | os.PathLike) -> Path:
    """Write a catalog as CSV (atomically); empty checksum fields mean "unknown"."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CATALOG_COLUMNS)
    for e in entries:
        w.writerow([e.subset, e.subject, e.night, e.record, e.psg_file, e.psg_sha256 or "",
                    e.hypnogram_file, e.hypnogram_sha256 or ""])
    return write_text_atomic(path, buf.getvalue())


def load_catalog(path: str | os.PathLike | None = None) -> list[CatalogEntry]:
    """Read a catalog CSV (default: the one shipped with hypnoscope)."""
    path = Path(path) if path is not None else _CATALOG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"Sleep-EDF catalog not found: {path}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(_CATALOG_COLUMNS) - set(rows[0]):
        raise ValueError(f"{path}: not a Sleep-EDF catalog (expected columns "
                         f"{_CATALOG_COLUMNS})")
    return [CatalogEntry(subset=r["subset"], subject=int(r["subject"]), night=int(r["night"]),
                         record=r["record"], psg_file=r["psg_file"],
                         psg_sha256=r["psg_sha256"] or None,
                         hypnogram_file=r["hypnogram_file"],
                         hypnogram_sha256=r["hypnogram_sha256"] or None) for r in rows]


def select_records(subset: str = "sc", subjects: Iterable[int] | None = None,
                   recording: Iterable[int] | int = (1, 2),
                   catalog: Sequence[CatalogEntry] | str | os.PathLike | None = None,
                   ) -> list[CatalogEntry]:
    """Catalog entries of a subset, restricted to ``subjects`` and night numbers.

    A subject that exists but lacks one of the requested nights (e.g. sleep-cassette
    subject 13, night 2) contributes the nights it has, with a logged warning.

    Raises
    ------
    ValueError
        Unknown subset, subject or night number (the message lists the valid ones).
    """
    key = SUBSETS.get(str(subset).lower())
    if key is None:
        raise ValueError(f"unknown Sleep-EDF subset {subset!r}; expected one of "
                         f"{sorted(SUBSETS)}")
    entries = catalog if isinstance(catalog, Sequence) and not isinstance(catalog, str) \
        else load_catalog(catalog)
    if key == "sleep-edf-20":
        pool = [e for e in entries if e.subset == "sc" and e.subject < 20]
    else:
        pool = [e for e in entries if e.subset == key]
    nights = {recording} if isinstance(recording, int) else {int(r) for r in recording}
    bad_nights = nights - {1, 2}
    if bad_nights or not nights:
        raise ValueError(f"recording must be night 1 and/or 2, got {sorted(bad_nights)}")
    available = sorted({e.subject for e in pool})
    if subjects is None:
        wanted = available
    else:
        wanted = sorted({int(s) for s in subjects})
        missing = [s for s in wanted if s not in available]
        if missing:
            raise ValueError(f"subject(s) {missing} not in Sleep-EDF subset {subset!r}; "
                             f"available: {_ranges(available)}")
    chosen = [e for e in pool if e.subject in wanted and e.night in nights]
    for s in wanted:
        got = {e.night for e in chosen if e.subject == s}
        if got != nights:
            log = logger.warning if subjects is not None else logger.debug
            log("Sleep-EDF %s subject %d has no night(s) %s; using %s", key, s,
                sorted(nights - got), sorted(got) or "none")
    if not chosen:
        raise ValueError(f"no Sleep-EDF night matches subset={subset!r}, subjects={wanted}, "
                         f"recording={sorted(nights)}")
    return chosen


def _ranges(values: Sequence[int]) -> str:
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out)


# ---------------------------------------------------------------------- download
def check_edf_header(path: str | os.PathLike) -> None:
    """Check that ``path`` is a complete EDF/EDF+ file (header fields and file size):
    :func:`hypnoscope.io.check_edf_header` in its strict form.

    Raises
    ------
    ValueError
        Not an EDF file, or shorter than its header says (truncated).
    """
    from .io import check_edf_header as _check

    _check(path, strict=True)


def _progress_enabled() -> bool | None:
    env = os.environ.get("HYPNOSCOPE_PROGRESS")
    if env is not None:
        return env != "0"
    import sys

    return sys.stderr.isatty()


def _retrieve(url: str, sha256: str | None, dest: Path, force: bool, downloader) -> Path:
    """Download ``url`` to ``dest`` via pooch (skipped if cached and verified)."""
    import pooch

    if force and dest.exists():
        dest.unlink()
    known = f"sha256:{sha256}" if sha256 else None
    plog = pooch.get_logger()
    for attempt in (0, 1):
        existed = dest.exists()
        if not existed:
            logger.info("downloading %s", url)
        level = plog.level
        plog.setLevel(logging.WARNING)  # pooch's INFO advice about known_hash misleads here
        try:
            out = Path(pooch.retrieve(url, known_hash=known, fname=dest.name,
                                      path=dest.parent, downloader=downloader))
        except ValueError as exc:  # pooch: checksum mismatch of the fresh download
            raise FetchError(f"checksum mismatch for {url}: the downloaded file does not "
                             f"have the SHA-256 {sha256} listed in the Sleep-EDF catalog; it "
                             f"was discarded (nothing written to {dest}). Retry later or "
                             f"check the mirror. ({exc})") from None
        except Exception as exc:  # requests errors: HTTP status, connection, timeout
            raise FetchError(f"download of {url} failed: {type(exc).__name__}: {exc}. "
                             "Check the network connection and --base-url.") from None
        finally:
            plog.setLevel(level)
        if sha256 or not out.name.lower().endswith(".edf"):
            return out
        try:
            check_edf_header(out)
            return out
        except ValueError as exc:
            out.unlink()
            if not existed or attempt:
                raise FetchError(f"{url}: downloaded file failed the EDF check and was "
                                 f"removed ({exc})") from None
            logger.warning("cached %s failed the EDF check (%s); downloading again", out, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_sleepedf(subjects: Iterable[int] | None = None,
                   recording: Iterable[int] | int = (1, 2), subset: str = "sc",
                   path: str | os.PathLike | None = None, base_url: str = SLEEPEDF_URL,
                   force_update: bool = False,
                   catalog: Sequence[CatalogEntry] | str | os.PathLike | None = None,
                   timeout: float = 60.0) -> list[tuple[Path, Path]]:
    """Download Sleep-EDF nights (PSG + hypnogram) and return their local paths.

    Parameters
    ----------
    subjects : iterable of int or None
        Subject numbers (the ``ss`` of ``SC4ssN``/``ST7ssN``); None = all of the subset.
    recording : int or iterable of int, default (1, 2)
        Night number(s).
    subset : {"sc", "sleep-edf-78", "sleep-edf-20", "st"}
        See the module docstring.
    path : path-like or None
        Local root mirroring the PhysioNet layout (``<path>/sleep-cassette/...``); default
        :func:`default_data_dir`.
    base_url : str
        Database root URL (a mirror must have the same layout).
    force_update : bool
        Download again even if the file is cached and verified.
    catalog : list of CatalogEntry, path-like or None
        Catalog to use instead of the shipped one.
    timeout : float
        Per-request timeout in seconds.

    Returns
    -------
    list of (psg_path, hypnogram_path)
        One pair per night, ordered by subject then night.

    Raises
    ------
    ValueError
        Unknown subset/subject/night.
    FetchError
        A download failed or a file did not verify (checksum or EDF header); the bad
        file is not left in the cache.
    """
    import pooch

    entries = select_records(subset, subjects, recording, catalog)
    root = Path(path).expanduser() if path is not None else default_data_dir()
    base = base_url if base_url.endswith("/") else base_url + "/"
    show = _progress_enabled()
    downloader = pooch.HTTPDownloader(progressbar=bool(show), timeout=timeout)
    jobs = [(f, sha) for e in entries for f, sha in ((e.psg_file, e.psg_sha256),
                                                     (e.hypnogram_file, e.hypnogram_sha256))]
    got: dict[str, Path] = {}
    for rel, sha in progress(jobs, desc="Sleep-EDF", unit="file",
                             disable=None if show else True):
        got[rel] = _retrieve(base + rel, sha, root / rel, force_update, downloader)
    return [(got[e.psg_file], got[e.hypnogram_file]) for e in entries]
