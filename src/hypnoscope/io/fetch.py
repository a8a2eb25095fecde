"""Downloaders: Sleep-EDF Expanded (PhysioNet ``sleep-edfx`` 1.0.0) and the NSRR cohorts.

Both go through the same step (:func:`_retrieve`: :mod:`pooch`, checksum-verified, a
file appears in the cache only when complete and verified). Sleep-EDF is below; the
NSRR downloader (:func:`fetch_nsrr`, SHHS, MESA, MrOS, CFS, CHAT ... of sleepdata.org,
token-based) is at the end of this module.

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

from hypnoscope.utils.files import write_text_atomic
from hypnoscope.utils.runtime import progress

logger = logging.getLogger(__name__)

#: PhysioNet location of Sleep-EDF Expanded 1.0.0.
SLEEPEDF_URL = "https://physionet.org/files/sleep-edfx/1.0.0/"

#: Subset names accepted by :func:`fetch_sleepedf` (aliases map to the canonical name).
SUBSETS = {"sc": "sc", "sleep-cassette": "sc", "sleep-edf-78": "sc",
           "sleep-edf-20": "sleep-edf-20", "st": "st", "sleep-telemetry": "st"}

_CATALOG_FILE = Path(__file__).parents[1] / "data" / "sleepedf_catalog.csv"
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
    :func:`hypnoscope.io.psg.check_edf_header` in its strict form.

    Raises
    ------
    ValueError
        Not an EDF file, or shorter than its header says (truncated).
    """
    from hypnoscope.io.psg import check_edf_header as _check

    _check(path, strict=True)


def _progress_enabled() -> bool | None:
    env = os.environ.get("HYPNOSCOPE_PROGRESS")
    if env is not None:
        return env != "0"
    import sys

    return sys.stderr.isatty()


def _retrieve(url: str, sha256: str | None, dest: Path, force: bool, downloader, *,
              known_hash: str | None = None, display: str | None = None,
              listed_in: str = "the Sleep-EDF catalog") -> Path:
    """Download ``url`` to ``dest`` via pooch (skipped if cached and verified).

    ``known_hash`` (``"md5:..."``) replaces the SHA-256; ``display`` is the URL shown in
    messages (without a token); ``listed_in`` names where the checksum comes from. A file
    without any checksum that ends in ``.edf`` is checked by its EDF header.
    """
    import pooch

    if force and dest.exists():
        dest.unlink()
    known = known_hash or (f"sha256:{sha256}" if sha256 else None)
    display = display or url
    plog = pooch.get_logger()
    for attempt in (0, 1):
        existed = dest.exists()
        if not existed:
            logger.info("downloading %s", display)
        level = plog.level
        plog.setLevel(logging.WARNING)  # pooch's INFO advice about known_hash misleads here
        try:
            out = Path(pooch.retrieve(url, known_hash=known, fname=dest.name,
                                      path=dest.parent, downloader=downloader))
        except FetchError:
            raise
        except ValueError as exc:  # pooch: checksum mismatch of the fresh download
            algo, _, value = (known or ":").partition(":")
            raise FetchError(f"checksum mismatch for {display}: the downloaded file does not "
                             f"have the {algo.upper().replace('SHA256', 'SHA-256')} {value} "
                             f"listed in {listed_in}; it was discarded (nothing written to "
                             f"{dest}). Retry later or check the mirror. ({exc})") from None
        except Exception as exc:  # requests errors: HTTP status, connection, timeout
            raise FetchError(f"download of {display} failed: {type(exc).__name__}: {exc}. "
                             "Check the network connection and --base-url.") from None
        finally:
            plog.setLevel(level)
        if known or not out.name.lower().endswith(".edf"):
            return out
        try:
            check_edf_header(out)
            return out
        except ValueError as exc:
            out.unlink()
            if not existed or attempt:
                raise FetchError(f"{display}: downloaded file failed the EDF check and was "
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


# ---------------------------------------------------------------------- NSRR
#: The National Sleep Research Resource (sleepdata.org).
NSRR_URL = "https://sleepdata.org"
#: Client name in the file-download URL (``/m/<client>/``), as the ``nsrr`` gem sends its.
NSRR_CLIENT = "hypnoscope"
#: Where NSRR keeps the EDFs and the two XML forms of a dataset (the download tree).
NSRR_EDF_FOLDER = "polysomnography/edfs"
NSRR_XML_FOLDERS = {"nsrr": "polysomnography/annotations-events-nsrr",
                    "profusion": "polysomnography/annotations-events-profusion"}
_NSRR_XML_SUFFIX = {"nsrr": "-nsrr.xml", "profusion": "-profusion.xml"}
_NSRR_ACCESS = ("NSRR data need an approved data access request for the dataset "
                "(https://sleepdata.org/datasets); your token is at https://sleepdata.org/token")


@dataclass(frozen=True)
class NsrrFile:
    """One file of an NSRR dataset as its file listing gives it."""

    full_path: str  # e.g. "polysomnography/edfs/shhs1/shhs1-200001.edf"
    size: int | None
    md5: str | None

    @property
    def name(self) -> str:
        return self.full_path.rsplit("/", 1)[-1]


def default_nsrr_dir() -> Path:
    """Root of the NSRR downloads: ``$HYPNOSCOPE_DATA/nsrr`` if the variable is set, else
    ``~/hypnoscope_data/nsrr``; a dataset's files go to ``<root>/<dataset>/<full path>``
    (NSRR's own tree, as the ``nsrr`` gem writes it)."""
    root = os.environ.get("HYPNOSCOPE_DATA")
    return Path(root).expanduser() / "nsrr" if root else Path.home() / "hypnoscope_data" / "nsrr"


class NsrrClient:
    """NSRR's documented web API (the one the ``nsrr`` Ruby gem uses).

    - ``GET {base}/api/v1/account/profile.json?auth_token=T`` -> ``{"authenticated": ...}``
    - ``GET {base}/api/v1/datasets/{dataset}/files.json?path=P&auth_token=T`` -> the
      entries of folder ``P``: ``file_name``, ``full_path``, ``is_file``, ``file_size``,
      ``file_checksum_md5``
    - ``GET {base}/datasets/{dataset}/files/a/{T}/m/{client}/{full_path}`` -> the file
      (a token without access to the dataset gets an HTML page instead)

    The token never appears in messages or logs (:meth:`display`).
    """

    def __init__(self, token: str, base_url: str = NSRR_URL, timeout: float = 60.0) -> None:
        import requests

        token = str(token or "").strip()
        if not token:
            raise ValueError(f"an NSRR download token is needed (--token or $NSRR_TOKEN). "
                             f"{_NSRR_ACCESS}")
        if "/" in token or any(c.isspace() for c in token):
            raise ValueError("the NSRR token must be one word without '/' or spaces; copy it "
                             "from https://sleepdata.org/token")
        self.token = token
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def display(self, text: str) -> str:
        """``text`` with the token replaced by ``TOKEN``."""
        return str(text).replace(self.token, "TOKEN")

    def _json(self, url: str, params: dict[str, str], what: str):
        import requests

        try:
            r = self.session.get(url, params={**params, "auth_token": self.token},
                                 timeout=self.timeout)
        except requests.RequestException as exc:
            raise FetchError(f"{what}: cannot reach {self.base} ({type(exc).__name__}: "
                             f"{self.display(exc)}). Check the network connection and "
                             "--base-url.") from None
        if r.status_code in (401, 403):
            raise FetchError(f"{what}: NSRR refused the token (HTTP {r.status_code}). "
                             f"{_NSRR_ACCESS}")
        if r.status_code == 404:
            raise FetchError(f"{what}: not found on {self.base} (HTTP 404)")
        if r.status_code != 200:
            raise FetchError(f"{what}: HTTP {r.status_code} from {self.base}")
        try:
            return r.json()
        except ValueError:
            raise FetchError(f"{what}: {self.base} did not answer with JSON (is --base-url "
                             "an NSRR site?)") from None

    def check_token(self) -> None:
        """Raise :class:`FetchError` unless NSRR authenticates the token."""
        got = self._json(f"{self.base}/api/v1/account/profile.json", {}, "NSRR token check")
        if not (isinstance(got, dict) and got.get("authenticated")):
            raise FetchError(f"NSRR did not accept the token (not authenticated). "
                             f"{_NSRR_ACCESS}")

    def list_folder(self, dataset: str, path: str) -> list[dict]:
        """The entries of one folder of a dataset (files and sub-folders)."""
        got = self._json(f"{self.base}/api/v1/datasets/{dataset}/files.json", {"path": path},
                         f"NSRR file listing of {dataset}/{path}")
        if not isinstance(got, list):
            raise FetchError(f"NSRR file listing of {dataset}/{path}: expected a list of "
                             f"files, got {type(got).__name__}")
        return got

    def file_url(self, dataset: str, full_path: str) -> str:
        return f"{self.base}/datasets/{dataset}/files/a/{self.token}/m/{NSRR_CLIENT}/{full_path}"


def _nsrr_file(entry: dict) -> NsrrFile:
    size = entry.get("file_size")
    md5 = entry.get("file_checksum_md5")
    return NsrrFile(full_path=str(entry["full_path"]).strip("/"),
                    size=int(size) if size not in (None, "") else None,
                    md5=str(md5).lower() if md5 else None)


def _participant(name: str) -> int | None:
    m = re.search(r"(\d+)$", Path(name).stem)
    return int(m.group(1)) if m else None


def list_nsrr_recordings(client: NsrrClient, dataset: str,
                         subjects: Iterable[int] | None = None,
                         visits: Iterable[str] | None = None, annotations: str = "nsrr",
                         ) -> list[tuple[NsrrFile, NsrrFile | None]]:
    """The EDFs of an NSRR dataset with their scoring XML, from the file listing.

    EDFs are found under ``polysomnography/edfs`` (and its sub-folders, e.g. SHHS's
    ``shhs1``/``shhs2`` visits; ``visits`` restricts to those sub-folders); the XML of
    ``<sub>/S.edf`` is ``S-<annotations>.xml`` in
    ``polysomnography/annotations-events-<annotations>/<sub>`` (None when not listed).
    ``subjects`` are participant numbers (the digits at the end of the name:
    ``shhs1-200001`` -> 200001).

    Raises
    ------
    ValueError
        A requested subject or visit is not in the dataset (the message gives what is).
    """
    if annotations not in NSRR_XML_FOLDERS:
        raise ValueError(f"annotations must be one of {sorted(NSRR_XML_FOLDERS)}, got "
                         f"{annotations!r}")
    wanted_visits = None if visits is None else {str(v) for v in visits}
    edfs: list[tuple[str, NsrrFile]] = []  # (sub-folder, file)
    folders, seen_subs = [""], []
    while folders:
        sub = folders.pop(0)
        for e in client.list_folder(dataset, f"{NSRR_EDF_FOLDER}/{sub}".rstrip("/")):
            if not e.get("is_file"):
                child = f"{sub}/{e['file_name']}".strip("/")
                seen_subs.append(child)
                if wanted_visits is None or child.split("/")[0] in wanted_visits:
                    folders.append(child)
            elif str(e.get("file_name", "")).lower().endswith(".edf"):
                edfs.append((sub, _nsrr_file(e)))
    if wanted_visits is not None and not wanted_visits <= set(seen_subs):
        raise ValueError(f"visit(s) {sorted(wanted_visits - set(seen_subs))} not in NSRR "
                         f"dataset {dataset!r}; its {NSRR_EDF_FOLDER} has "
                         f"{sorted(seen_subs) or 'no sub-folders'}")
    if not edfs:
        raise ValueError(f"NSRR dataset {dataset!r} lists no EDF under {NSRR_EDF_FOLDER}")
    if subjects is not None:
        want = {int(s) for s in subjects}
        have = {_participant(f.name) for _, f in edfs}
        missing = sorted(want - have)
        if missing:
            ids = sorted(i for i in have if i is not None)
            raise ValueError(f"subject(s) {missing} not in NSRR dataset {dataset!r} "
                             f"({len(ids)} participants, {ids[0]}-{ids[-1]})" if ids else
                             f"subject(s) {missing} not in NSRR dataset {dataset!r}")
        edfs = [(sub, f) for sub, f in edfs if _participant(f.name) in want]
    xml_lists: dict[str, dict[str, NsrrFile]] = {}
    out = []
    for sub, f in sorted(edfs, key=lambda x: x[1].full_path):
        if sub not in xml_lists:
            folder = f"{NSRR_XML_FOLDERS[annotations]}/{sub}".rstrip("/")
            try:
                entries = client.list_folder(dataset, folder)
            except FetchError as exc:
                if "HTTP 404" not in str(exc):
                    raise
                entries = []
            xml_lists[sub] = {e["file_name"]: _nsrr_file(e) for e in entries
                              if e.get("is_file")}
        xml_name = f.name[: -len(".edf")] + _NSRR_XML_SUFFIX[annotations]
        out.append((f, xml_lists[sub].get(xml_name)))
    return out


class _ResumableDownload:
    """A :mod:`pooch` downloader that resumes: the bytes go to ``<dest>.part``, an
    interrupted download keeps them and the next call asks for the rest (HTTP ``Range``);
    the ``.part`` becomes pooch's file only when it has the listed size, so pooch's
    checksum check and move into place are the only way into the cache."""

    def __init__(self, client: NsrrClient, part: Path, size: int | None, display: str,
                 progressbar: bool) -> None:
        self.client, self.part, self.size = client, part, size
        self.display, self.progressbar = display, progressbar

    def _open(self, url: str, offset: int):
        import requests

        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            r = self.client.session.get(url, headers=headers, stream=True,
                                        timeout=self.client.timeout)
        except requests.RequestException as exc:
            raise FetchError(f"download of {self.display} failed: {type(exc).__name__}: "
                             f"{self.client.display(exc)}. Check the network connection; "
                             "run the same command again to resume.") from None
        if r.status_code in (401, 403, 404) or "text/html" in r.headers.get(
                "Content-Type", "").lower():
            r.close()
            why = (f"HTTP {r.status_code}" if r.status_code >= 400 else
                   "an HTML page came back instead of the file")
            raise FetchError(f"download of {self.display} refused ({why}): the token has no "
                             f"access to this dataset. {_NSRR_ACCESS}")
        if r.status_code not in (200, 206):
            r.close()
            raise FetchError(f"download of {self.display} failed: HTTP {r.status_code}")
        return r

    def __call__(self, url: str, output_file, pooch_obj=None, check_only: bool = False):
        import requests
        import urllib3

        part, size = self.part, self.size
        part.parent.mkdir(parents=True, exist_ok=True)
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:  # not the file listed now: start afresh
            part.unlink()
            offset = 0
        if size is None or offset < size:
            r = self._open(url, offset)
            with r:
                if offset and r.status_code == 200:  # the server ignored the Range
                    offset = 0
                elif offset and not r.headers.get("Content-Range", "").startswith(
                        f"bytes {offset}-"):
                    raise FetchError(f"download of {self.display}: the server answered the "
                                     f"resume request at byte {offset} with "
                                     f"{r.headers.get('Content-Range')!r}; remove {part} "
                                     "to download it afresh")
                if offset:
                    logger.info("resuming %s at byte %d of %s", self.display, offset,
                                size if size is not None else "?")
                bar = progress(total=size, initial=offset, desc=self.display.rsplit("/", 1)[-1],
                               unit="B", unit_scale=True, unit_divisor=1024,
                               disable=None if self.progressbar else True, leave=False)
                try:
                    with open(part, "ab" if offset else "wb") as f:
                        # read1: whatever has arrived, so a dropped line loses no byte
                        while chunk := r.raw.read1(1 << 16, decode_content=True):
                            f.write(chunk)
                            bar.update(len(chunk))
                except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
                    got = part.stat().st_size if part.exists() else 0
                    raise FetchError(
                        f"download of {self.display} interrupted after {got} of "
                        f"{size if size is not None else '?'} bytes ({type(exc).__name__}); "
                        f"the partial file {part} is kept: run the same command again to "
                        "resume") from None
                finally:
                    bar.close()
        got = part.stat().st_size
        if size is not None and got != size:
            if got > size:
                part.unlink()
            raise FetchError(f"download of {self.display} ended after {got} of {size} bytes "
                             f"listed by NSRR; run the same command again to "
                             f"{'resume' if got < size else 'download it afresh'}")
        os.replace(part, output_file)


def fetch_nsrr(dataset: str, token: str, subjects: Iterable[int] | None = None,
               visits: Iterable[str] | None = None, path: str | os.PathLike | None = None,
               base_url: str = NSRR_URL, annotations: str = "nsrr",
               force_update: bool = False, timeout: float = 60.0,
               ) -> list[tuple[Path, Path | None]]:
    """Download recordings of an NSRR dataset (EDF + scoring XML) with a download token.

    Parameters
    ----------
    dataset : str
        The dataset's slug on sleepdata.org: ``shhs``, ``mesa``, ``mros``, ``cfs``,
        ``chat`` ...
    token : str
        The user's NSRR download token (https://sleepdata.org/token). NSRR data need an
        approved data access request for the dataset.
    subjects : iterable of int or None
        Participant numbers (``200001`` for ``shhs1-200001``); None = every recording.
    visits : iterable of str or None
        Sub-folders of ``polysomnography/edfs`` to use (SHHS: ``shhs1``, ``shhs2``).
    path : path-like or None
        Local root (default :func:`default_nsrr_dir`); files go to
        ``<path>/<dataset>/<NSRR path>``, e.g. ``shhs/polysomnography/edfs/shhs1/
        shhs1-200001.edf``, where :func:`hypnoscope.io.recordings.find_hypnogram` finds
        their XML.
    base_url : str
        NSRR site (a test server must offer the same API).
    annotations : {"nsrr", "profusion"}
        Which XML form to fetch beside each EDF.
    force_update : bool
        Download again even if the file is present and verified.
    timeout : float
        Per-request timeout in seconds.

    Returns
    -------
    list of (edf_path, xml_path or None)

    Integrity and resume: every file is checked against the size and MD5 of NSRR's listing
    (an EDF without a listed MD5 also by its EDF header); files already present and
    verified are skipped. Bytes arrive in ``<file>.part``; an interrupted download keeps
    them and the next run resumes there with an HTTP ``Range`` request. A file whose
    checksum does not match is discarded.

    Raises
    ------
    ValueError
        Empty or malformed token, unknown subject or visit.
    FetchError
        Token refused, no access to the dataset, a failed or interrupted download, or a
        file that does not verify (never left in place).
    """
    client = NsrrClient(token, base_url, timeout)
    client.check_token()
    pairs = list_nsrr_recordings(client, dataset, subjects, visits, annotations)
    root = (Path(path).expanduser() if path is not None else default_nsrr_dir()) / dataset
    show = bool(_progress_enabled())
    jobs = [f for pair in pairs for f in pair if f is not None]
    got: dict[str, Path] = {}
    for f in progress(jobs, desc=f"NSRR {dataset}", unit="file",
                      disable=None if show else True):
        dest = root / f.full_path
        url = client.file_url(dataset, f.full_path)
        display = client.display(url)
        downloader = _ResumableDownload(client, dest.with_name(dest.name + ".part"), f.size,
                                        display, show)
        out = _retrieve(url, None, dest, force_update, downloader,
                        known_hash=f"md5:{f.md5}" if f.md5 else None, display=display,
                        listed_in=f"NSRR's file listing of {dataset}")
        have = out.stat().st_size
        if f.size is not None and have != f.size:  # a present file, and no MD5 listed
            out.unlink()
            raise FetchError(f"{out}: {have} bytes but NSRR lists {f.size}; it was removed, "
                             "run the same command again to download it")
        got[f.full_path] = out
    return [(got[e.full_path], None if x is None else got[x.full_path]) for e, x in pairs]
