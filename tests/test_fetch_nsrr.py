"""NSRR downloader (``fetch --nsrr``) against a local server that speaks NSRR's file API
(token check, JSON file listing with size and MD5, token-in-URL file download with HTTP
Range): no network."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
from pathlib import Path

import pytest

from conftest import write_psg_edf
from hypnoscope.cli import main
from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.fetch import FetchError, NsrrClient, fetch_nsrr, list_nsrr_recordings
from hypnoscope.io.hypnograms import read_hypnogram
from hypnoscope.io.nsrr_xml import write_nsrr_xml
from hypnoscope.io.recordings import find_hypnogram

GOOD, NO_ACCESS = "goodtoken123", "otherdataset456"
EDF1 = "polysomnography/edfs/shhs1/shhs1-200001.edf"
XML1 = "polysomnography/annotations-events-nsrr/shhs1/shhs1-200001-nsrr.xml"


class NsrrServer:
    """Files of a fake ``shhs`` dataset served as sleepdata.org serves them."""

    def __init__(self, root: Path) -> None:
        self.files: dict[str, bytes] = {}
        self.md5_override: dict[str, str | None] = {}
        self.cut_next: dict[str, int] = {}  # path -> bytes sent before dropping the line
        self.requests: list[tuple[str, str | None, int]] = []  # (path, Range, bytes sent)
        for i, sid in enumerate((200001, 200002)):
            for visit in ("shhs1", "shhs2"):
                edf = write_psg_edf(root / f"{visit}-{sid}.edf", duration_sec=120.0, seed=i,
                                    channels={"EEG": 125.0, "EEG(sec)": 125.0,
                                              "EOG(L)": 50.0})
                self.files[f"polysomnography/edfs/{visit}/{edf.name}"] = edf.read_bytes()
                xml = write_nsrr_xml(Hypnogram(["W", "N1", "N2", "R"][: 2 + i]),
                                     root / f"{visit}-{sid}-nsrr.xml")
                self.files[f"polysomnography/annotations-events-nsrr/{visit}/{xml.name}"] = (
                    xml.read_bytes())

    def listing(self, folder: str) -> list[dict]:
        folder = folder.strip("/")
        out, subs = [], set()
        for path, data in self.files.items():
            if not path.startswith(folder + "/"):
                continue
            rest = path[len(folder) + 1:]
            if "/" in rest:
                subs.add(rest.split("/")[0])
                continue
            out.append({"dataset": "shhs", "file_name": rest, "full_path": path,
                        "folder": folder, "is_file": True, "file_size": len(data),
                        "file_checksum_md5": self.md5_override.get(
                            path, hashlib.md5(data).hexdigest())})
        out += [{"file_name": s, "full_path": f"{folder}/{s}", "is_file": False}
                for s in sorted(subs)]
        return out

    def handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _json(self, obj, status=200):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - http.server API
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                token = q.get("auth_token")
                if url.path == "/api/v1/account/profile.json":
                    return self._json({"authenticated": token in (GOOD, NO_ACCESS)})
                if url.path == "/api/v1/datasets/shhs/files.json":
                    return self._json(server.listing(q.get("path", "")))
                if url.path == "/datasets/shhs/files":  # the page NSRR redirects to
                    body = b"<html>Request data access</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return None
                prefix = "/datasets/shhs/files/a/"
                if url.path.startswith(prefix):
                    tok, _, rest = url.path[len(prefix):].partition("/m/hypnoscope/")
                    if tok != GOOD:
                        self.send_response(302)
                        self.send_header("Location", "/datasets/shhs/files")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    return self._file(rest, self.headers.get("Range"))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None

            def _file(self, path, rng):
                data = server.files[path]
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Disposition", f'attachment; filename="{path}"')
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                body = data[start:]
                cut = server.cut_next.pop(path, None)
                if cut is not None:  # a dropped connection: fewer bytes than announced
                    body = body[:cut]
                # recorded before the body goes out: the client may return as soon as it
                # has read the last byte, before this thread runs again
                server.requests.append((path, rng, len(body)))
                self.wfile.write(body)
                if cut is not None:
                    self.close_connection = True

        return Handler


@pytest.fixture()
def nsrr(tmp_path):
    srv = NsrrServer(tmp_path / "src")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), srv.handler())
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield srv, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("HYPNOSCOPE_PROGRESS", "0")


def test_listing_pairs_edfs_with_xml_and_filters(nsrr):
    srv, url = nsrr
    client = NsrrClient(GOOD, url)
    pairs = list_nsrr_recordings(client, "shhs", subjects=[200002])
    assert [(e.full_path, x.full_path) for e, x in pairs] == [
        ("polysomnography/edfs/shhs1/shhs1-200002.edf",
         "polysomnography/annotations-events-nsrr/shhs1/shhs1-200002-nsrr.xml"),
        ("polysomnography/edfs/shhs2/shhs2-200002.edf",
         "polysomnography/annotations-events-nsrr/shhs2/shhs2-200002-nsrr.xml")]
    assert pairs[0][0].size == len(srv.files[pairs[0][0].full_path])
    assert pairs[0][0].md5 == hashlib.md5(srv.files[pairs[0][0].full_path]).hexdigest()
    assert len(list_nsrr_recordings(client, "shhs", visits=["shhs2"])) == 2
    with pytest.raises(ValueError, match=r"subject\(s\) \[1\] not in NSRR dataset 'shhs' "
                                         r"\(2 participants, 200001-200002\)"):
        list_nsrr_recordings(client, "shhs", subjects=[1])
    with pytest.raises(ValueError, match=r"visit\(s\) \['shhs3'\] not in NSRR dataset"):
        list_nsrr_recordings(client, "shhs", visits=["shhs3"])


def test_fetch_downloads_verifies_pairs_and_skips_present_files(nsrr, tmp_path):
    srv, url = nsrr
    out = tmp_path / "data"
    pairs = fetch_nsrr("shhs", GOOD, subjects=[200001], visits=["shhs1"], path=out,
                       base_url=url)
    edf, xml = pairs[0]
    assert len(pairs) == 1 and edf == out / "shhs" / EDF1 and xml == out / "shhs" / XML1
    assert edf.read_bytes() == srv.files[EDF1] and xml.read_bytes() == srv.files[XML1]
    assert not list(out.rglob("*.part"))
    # the NSRR download tree pairs the EDF with its XML, and the XML reads
    assert find_hypnogram(edf) == xml
    assert read_hypnogram(xml).labels == ["W", "N1"]
    # a second run checks the MD5 of the present files and downloads nothing
    n = len(srv.requests)
    assert fetch_nsrr("shhs", GOOD, subjects=[200001], visits=["shhs1"], path=out,
                      base_url=url) == pairs
    assert len(srv.requests) == n


def test_interrupted_download_resumes_with_range(nsrr, tmp_path):
    srv, url = nsrr
    out = tmp_path / "data"
    size = len(srv.files[EDF1])
    srv.cut_next[EDF1] = 1000  # the line drops after 1000 bytes
    with pytest.raises(FetchError, match=r"interrupted after 1000 of \d+ bytes.*partial file "
                                         r".*shhs1-200001\.edf\.part is kept: run the same "
                                         r"command again to resume"):
        fetch_nsrr("shhs", GOOD, subjects=[200001], visits=["shhs1"], path=out, base_url=url)
    dest = out / "shhs" / EDF1
    part = dest.with_name(dest.name + ".part")
    assert not dest.exists() and part.stat().st_size == 1000
    assert srv.files[EDF1][:1000] == part.read_bytes()
    edf, xml = fetch_nsrr("shhs", GOOD, subjects=[200001], visits=["shhs1"], path=out,
                          base_url=url)[0]
    # the rest only, asked for with a Range request at the partial file's size
    assert (EDF1, "bytes=1000-", size - 1000) in srv.requests
    assert edf.read_bytes() == srv.files[EDF1] and not part.exists()
    assert xml.read_bytes() == srv.files[XML1]


def test_bad_token_and_no_access_give_clear_errors(nsrr, tmp_path, capsys):
    srv, url = nsrr
    out = tmp_path / "data"
    with pytest.raises(FetchError, match=r"NSRR did not accept the token \(not "
                                         r"authenticated\)\. NSRR data need an approved data "
                                         r"access request"):
        fetch_nsrr("shhs", "wrongtoken789", path=out, base_url=url)
    # authenticated, but without access to this dataset: NSRR answers with an HTML page
    with pytest.raises(FetchError, match=r"shhs1-200001\.edf refused \(an HTML page came "
                                         r"back instead of the file\): the token has no "
                                         r"access to this dataset"):
        fetch_nsrr("shhs", NO_ACCESS, subjects=[200001], path=out, base_url=url)
    assert not [p for p in out.rglob("*") if p.is_file()]  # nothing half-written
    # the CLI: one line, exit code 2, and the token never printed
    rc = main(["fetch", "--nsrr", "shhs", "--token", "wrongtoken789", "--base-url", url,
               "--path", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("hypnoscope fetch: error: NSRR did not accept the token")
    assert "wrongtoken789" not in err and "Traceback" not in err
    with pytest.raises(ValueError, match="an NSRR download token is needed"):
        fetch_nsrr("shhs", "", base_url=url)


def test_checksum_mismatch_is_discarded(nsrr, tmp_path):
    srv, url = nsrr
    srv.md5_override[EDF1] = "0" * 32
    out = tmp_path / "data"
    with pytest.raises(FetchError, match=r"checksum mismatch for .*/a/TOKEN/m/hypnoscope/"
                                         r"polysomnography/edfs/shhs1/shhs1-200001\.edf: .*"
                                         r"MD5 0{32} listed in NSRR's file listing of shhs; "
                                         r"it was discarded"):
        fetch_nsrr("shhs", GOOD, subjects=[200001], visits=["shhs1"], path=out, base_url=url)
    assert not (out / "shhs" / EDF1).exists() and not list(out.rglob("*.part"))


def test_without_listed_md5_size_and_edf_header_are_checked(nsrr, tmp_path):
    srv, url = nsrr
    srv.md5_override.update({EDF1: None, XML1: None})
    out = tmp_path / "data"
    kw = dict(subjects=[200001], visits=["shhs1"], path=out, base_url=url)
    edf, xml = fetch_nsrr("shhs", GOOD, **kw)[0]
    assert edf.read_bytes() == srv.files[EDF1] and xml.read_bytes() == srv.files[XML1]
    # a present file of the wrong size is removed with an error, and fetched again next time
    xml.write_bytes(srv.files[XML1] + b"<!-- extra -->")
    with pytest.raises(FetchError, match=rf"{len(srv.files[XML1]) + 14} bytes but NSRR lists "
                                         rf"{len(srv.files[XML1])}; it was removed"):
        fetch_nsrr("shhs", GOOD, **kw)
    assert not xml.exists()
    # a truncated EDF fails its header check and is downloaded again at once
    edf.write_bytes(srv.files[EDF1][:5000])
    assert fetch_nsrr("shhs", GOOD, **kw)[0] == (edf, xml)
    assert edf.read_bytes() == srv.files[EDF1] and xml.read_bytes() == srv.files[XML1]


def test_cli_fetch_nsrr(nsrr, tmp_path, capsys, monkeypatch):
    srv, url = nsrr
    out = tmp_path / "data"
    monkeypatch.setenv("NSRR_TOKEN", GOOD)
    assert main(["fetch", "--nsrr", "shhs", "--subjects", "200001-200002", "--visit", "shhs1",
                 "--base-url", url, "--path", str(out), "--list"]) == 0
    listed = capsys.readouterr().out
    assert f"{EDF1}\t{XML1}" in listed and "2 recordings of NSRR shhs" in listed
    assert not out.exists()  # --list downloads nothing
    assert main(["fetch", "--nsrr", "shhs", "--subjects", "200001-200002", "--visit", "shhs1",
                 "--base-url", url, "--path", str(out)]) == 0
    assert "2 recordings ready" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "shhs").rglob("*.*")) == [
        "shhs1-200001-nsrr.xml", "shhs1-200001.edf", "shhs1-200002-nsrr.xml",
        "shhs1-200002.edf"]
    assert main(["fetch", "--token", "x"]) == 2
    assert "--token and --visit go with --nsrr" in capsys.readouterr().err
