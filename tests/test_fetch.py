"""Sleep-EDF catalog and downloader, tested against a local HTTP mirror (no network)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from conftest import write_psg_edf
from hypnoscope.cli import main
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.fetch import (
    FetchError,
    build_catalog,
    check_edf_header,
    default_data_dir,
    fetch_sleepedf,
    load_catalog,
    select_records,
    write_catalog,
)
from hypnoscope.io.hypnograms import read_edf_hypnogram

# (PSG name, hypnogram name) of the mirror; SC4012 is missing on purpose (subject 1 has
# only night 1, like subject 13 of the real database).
MIRROR = [("sleep-cassette/SC4001E0-PSG.edf", "sleep-cassette/SC4001EC-Hypnogram.edf"),
          ("sleep-cassette/SC4002E0-PSG.edf", "sleep-cassette/SC4002EC-Hypnogram.edf"),
          ("sleep-cassette/SC4011E0-PSG.edf", "sleep-cassette/SC4011EH-Hypnogram.edf"),
          ("sleep-cassette/SC4251E0-PSG.edf", "sleep-cassette/SC4251EP-Hypnogram.edf"),
          ("sleep-telemetry/ST7011J0-PSG.edf", "sleep-telemetry/ST7011JP-Hypnogram.edf"),
          ("sleep-telemetry/ST7012J0-PSG.edf", "sleep-telemetry/ST7012JP-Hypnogram.edf")]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A PhysioNet-like folder (RECORDS, SHA256SUMS.txt, small EDF files) served over
    HTTP on 127.0.0.1; yields (root, base_url, catalog_path, request log)."""
    root = tmp_path_factory.mktemp("mirror")
    sums = []
    for i, (psg, hyp) in enumerate(MIRROR):
        write_psg_edf(root / psg, duration_sec=60.0, seed=i,
                      channels={"EEG Fpz-Cz": 100.0, "EMG submental": 1.0})
        Hypnogram(["W", "N1", "N2", "R"][: 2 + i % 3]).to_edf(root / hyp)
        sums += [f"{_sha256(root / psg)} {psg}", f"{_sha256(root / hyp)} {hyp}"]
    (root / "RECORDS").write_text("\n".join(p for p, _ in MIRROR) + "\n")
    (root / "SHA256SUMS.txt").write_text("\n".join(sums + ["0" * 64 + " RECORDS"]) + "\n")
    catalog = write_catalog(build_catalog(root / "RECORDS", root / "SHA256SUMS.txt"),
                            root / "catalog.csv")
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            log.append(self.path)
            super().do_GET()

        def log_message(self, *args):  # keep test output quiet
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/", catalog, log
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def test_build_catalog_pairs_psg_and_hypnogram(mirror):
    root, _, catalog, _ = mirror
    entries = load_catalog(catalog)
    assert [(e.subset, e.subject, e.night) for e in entries] == [
        ("sc", 0, 1), ("sc", 0, 2), ("sc", 1, 1), ("sc", 25, 1), ("st", 1, 1), ("st", 1, 2)]
    e = entries[2]
    assert e.record == "SC4011" and e.hypnogram_file.endswith("SC4011EH-Hypnogram.edf")
    assert e.psg_sha256 == _sha256(root / e.psg_file)
    assert e.hypnogram_sha256 == _sha256(root / e.hypnogram_file)


def test_select_records_subsets_and_errors(mirror, caplog):
    catalog = mirror[2]
    assert [e.record for e in select_records("sleep-edf-20", catalog=catalog)] == [
        "SC4001", "SC4002", "SC4011"]  # subject 25 is outside Sleep-EDF-20
    assert [e.record for e in select_records("sleep-edf-78", catalog=catalog)][-1] == "SC4251"
    assert [e.record for e in select_records("st", recording=2, catalog=catalog)] == ["ST7012"]
    with caplog.at_level("WARNING"):
        got = select_records("sc", subjects=[1], catalog=catalog)
    assert [e.record for e in got] == ["SC4011"] and "no night(s) [2]" in caplog.text
    with pytest.raises(ValueError, match=r"subject\(s\) \[7\].*available: 0-1, 25"):
        select_records("sc", subjects=[7], catalog=catalog)
    with pytest.raises(ValueError, match="unknown Sleep-EDF subset 'xx'"):
        select_records("xx", catalog=catalog)
    with pytest.raises(ValueError, match="night 1 and/or 2"):
        select_records("sc", recording=3, catalog=catalog)


def test_fetch_downloads_verifies_and_caches(mirror, tmp_path):
    root, url, catalog, log = mirror
    dest = tmp_path / "cache"
    n0 = len(log)
    pairs = fetch_sleepedf(subjects=[0], subset="sleep-edf-20", path=dest, base_url=url,
                           catalog=catalog)
    assert [(p.name, h.name) for p, h in pairs] == [
        ("SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf"),
        ("SC4002E0-PSG.edf", "SC4002EC-Hypnogram.edf")]
    for psg, hyp in pairs:
        assert psg == dest / "sleep-cassette" / psg.name
        assert psg.read_bytes() == (root / "sleep-cassette" / psg.name).read_bytes()
        assert hyp.read_bytes() == (root / "sleep-cassette" / hyp.name).read_bytes()
    assert len(log) - n0 == 4
    # second call: everything cached and verified -> no request at all
    again = fetch_sleepedf(subjects=[0], subset="sleep-edf-20", path=dest, base_url=url,
                           catalog=catalog)
    assert again == pairs and len(log) - n0 == 4
    # force_update downloads again
    fetch_sleepedf(subjects=[0], recording=1, subset="sc", path=dest, base_url=url,
                   catalog=catalog, force_update=True)
    assert len(log) - n0 == 6
    # a damaged cached file is detected by its checksum and replaced
    pairs[0][0].write_bytes(b"garbage")
    fetch_sleepedf(subjects=[0], recording=1, path=dest, base_url=url, catalog=catalog)
    assert pairs[0][0].read_bytes() == (root / "sleep-cassette/SC4001E0-PSG.edf").read_bytes()
    assert len(log) - n0 == 7
    # a downloaded hypnogram is readable
    assert read_edf_hypnogram(pairs[1][1]).n_epochs == 3


def test_fetch_rejects_corrupted_file(mirror, tmp_path):
    root, url, catalog, _ = mirror
    entries = load_catalog(catalog)
    bad = [e for e in entries if e.record == "ST7011"]
    bad = [type(bad[0])(**{**bad[0].__dict__, "psg_sha256": "ab" * 32})]  # wrong checksum
    with pytest.raises(FetchError, match=r"checksum mismatch.*ST7011J0-PSG\.edf"):
        fetch_sleepedf(subset="st", recording=1, path=tmp_path, base_url=url, catalog=bad)
    assert not (tmp_path / "sleep-telemetry" / "ST7011J0-PSG.edf").exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing partial left


def test_fetch_without_checksum_uses_edf_header(mirror, tmp_path):
    root, url, catalog, log = mirror
    entries = [e for e in load_catalog(catalog) if e.record == "SC4251"]
    unhashed = [type(entries[0])(**{**entries[0].__dict__, "psg_sha256": None,
                                    "hypnogram_sha256": None})]
    (psg, hyp), = fetch_sleepedf(subset="sc", path=tmp_path / "a", base_url=url,
                                 catalog=unhashed)
    check_edf_header(psg)
    assert psg.read_bytes() == (root / "sleep-cassette/SC4251E0-PSG.edf").read_bytes()
    # a truncated file on the server is rejected and not kept
    trunc = tmp_path / "mirror2"
    for rel in (unhashed[0].psg_file, unhashed[0].hypnogram_file):
        (trunc / rel).parent.mkdir(parents=True, exist_ok=True)
        data = (root / rel).read_bytes()
        (trunc / rel).write_bytes(data[:-100] if rel.endswith("PSG.edf") else data)
    with pytest.raises(ValueError, match="truncated EDF file"):
        check_edf_header(trunc / unhashed[0].psg_file)
    with pytest.raises(ValueError, match="not an EDF file"):
        check_edf_header(root / "RECORDS")


def test_fetch_truncated_download_without_checksum(tmp_path, mirror):
    """Serve a truncated PSG from a second mirror: the fetch fails, nothing is cached."""
    root, _, catalog, _ = mirror
    entry = [e for e in load_catalog(catalog) if e.record == "SC4251"][0]
    m2 = tmp_path / "m2"
    for rel in (entry.psg_file, entry.hypnogram_file):
        (m2 / rel).parent.mkdir(parents=True, exist_ok=True)
        data = (root / rel).read_bytes()
        (m2 / rel).write_bytes(data[: len(data) // 2] if "PSG" in rel else data)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(m2)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        unhashed = [type(entry)(**{**entry.__dict__, "psg_sha256": None,
                                   "hypnogram_sha256": None})]
        with pytest.raises(FetchError, match="failed the EDF check.*truncated"):
            fetch_sleepedf(subset="sc", path=tmp_path / "c", catalog=unhashed,
                           base_url=f"http://127.0.0.1:{server.server_address[1]}")
        assert not (tmp_path / "c" / entry.psg_file).exists()
        # a missing file (HTTP 404) is a clear error naming the URL
        with pytest.raises(FetchError, match=r"download of .*SC4001E0-PSG\.edf failed"):
            fetch_sleepedf(subjects=[0], recording=1, path=tmp_path / "d", catalog=catalog,
                           base_url=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def test_interrupted_fetch_resumes_with_missing_files_only(mirror, tmp_path):
    """A fetch that stops half-way (the server lacks night 2) keeps the verified files of
    night 1; the re-run downloads only what is missing."""
    root, url, catalog, log = mirror
    part = tmp_path / "partial"
    for rel in MIRROR[0]:  # only SC4001 on the first server
        (part / rel).parent.mkdir(parents=True, exist_ok=True)
        (part / rel).write_bytes((root / rel).read_bytes())
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(part)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dest = tmp_path / "cache"
    try:
        with pytest.raises(FetchError, match=r"SC4002E0-PSG\.edf failed"):
            fetch_sleepedf(subjects=[0], path=dest, catalog=catalog,
                           base_url=f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
    cached = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert cached == sorted(MIRROR[0])  # night 1 complete, nothing partial of night 2
    n0 = len(log)
    pairs = fetch_sleepedf(subjects=[0], path=dest, base_url=url, catalog=catalog)
    assert sorted(log[n0:]) == sorted("/" + rel for rel in MIRROR[1])
    assert [p.name for p, _ in pairs] == ["SC4001E0-PSG.edf", "SC4002E0-PSG.edf"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_shipped_catalog_matches_sleepedf():
    entries = load_catalog()
    sc = select_records("sc", catalog=entries)
    assert len(sc) == 153 and len({e.subject for e in sc}) == 78
    edf20 = select_records("sleep-edf-20", catalog=entries)
    assert len(edf20) == 39 and sorted({e.subject for e in edf20}) == list(range(20))
    assert [e.night for e in edf20 if e.subject == 13] == [1]
    st = select_records("st", catalog=entries)
    assert len(st) == 44 and len({e.subject for e in st}) == 22
    assert all(e.psg_sha256 and e.hypnogram_sha256 for e in entries)
    assert all(len(e.psg_sha256) == 64 for e in entries)
    assert {e.subject for e in sc}.isdisjoint({39, 68, 69, 78, 79})


def test_shipped_catalog_checksums_match_real_hypnograms(shared_data):
    d = shared_data / "sleepedf_hypnograms"
    rebuilt = build_catalog(d / "RECORDS", d / "SHA256SUMS.txt")
    assert rebuilt == load_catalog()
    by_file = {e.hypnogram_file: e.hypnogram_sha256 for e in rebuilt}
    files = sorted((d / "sleep-cassette").glob("*-Hypnogram.edf"))
    assert len(files) == 54  # subjects 0-27 (README of the shared data)
    for f in files:  # every real file has the checksum the shipped catalog records
        assert by_file[f"sleep-cassette/{f.name}"] == _sha256(f)


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HYPNOSCOPE_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path / "sleep-edfx"
    monkeypatch.delenv("HYPNOSCOPE_DATA")
    assert default_data_dir() == Path.home() / "hypnoscope_data" / "sleep-edfx"


def test_cli_fetch(mirror, tmp_path, capsys, monkeypatch):
    # only this module's commands: keeps the test independent of the other sub-commands
    monkeypatch.setattr("hypnoscope.cli.COMMAND_MODULES", ["data"])
    root, url, catalog, _ = mirror
    rc = main(["fetch", "--subset", "st", "--subjects", "1", "--path", str(tmp_path),
               "--base-url", url, "--catalog", str(catalog)])
    out = capsys.readouterr().out
    assert rc == 0 and "2 nights ready" in out
    assert (tmp_path / "sleep-telemetry/ST7012J0-PSG.edf").is_file()
    rc = main(["fetch", "--list", "--subset", "sc", "--subjects", "0-1",
               "--catalog", str(catalog)])
    out = capsys.readouterr().out
    assert rc == 0 and "3 nights of 2 subjects" in out and "SC4011EH-Hypnogram.edf" in out
    rc = main(["fetch", "--subset", "sc", "--subjects", "9", "--catalog", str(catalog),
               "--path", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "subject(s) [9]" in err
    bad = tmp_path / "bad.csv"
    write_catalog([e.__class__(**{**e.__dict__, "psg_sha256": "cd" * 32})
                   for e in load_catalog(catalog) if e.record == "SC4011"], bad)
    rc = main(["fetch", "--subset", "sc", "--path", str(tmp_path / "x"), "--base-url", url,
               "--catalog", str(bad)])
    assert rc == 2 and "checksum mismatch" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["fetch", "--help"])
    assert exc.value.code == 0
    assert "--subset" in capsys.readouterr().out
