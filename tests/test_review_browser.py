"""Browser tests of ``hypnoscope review`` (issue #28): Playwright drives Debian's Chromium
against the real server (the review app under uvicorn, as ``hypnoscope review`` serves it,
in a thread, on a free port of 127.0.0.1) on a short simulated night (SIMULATED signals)
that the review stages first.

The page draws its signals (every lane inked across the page), the scale and filter
controls change what is drawn and requested, clicking the navigator jumps, ``n`` goes to
the check queue; ten epochs scored with the keyboard and one taken back with ``u`` are
shown after a reload and after reopening, and are saved as TSV, EDF+ and NSRR XML (read
back with hypnoscope's readers) and in the review's state JSON.

Without Playwright or Chromium the tests skip, except under CI (env ``CI`` set), where they
fail: the issue requires them to run there (``make test`` installs Chromium: ``make
browser``).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import shutil
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from hypnoscope.hypnogram import Hypnogram
from hypnoscope.io.hypnograms import read_hypnogram

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCORER = "Ann Example"
STEM = "SC4001E0"
#: The simulated night: 60 epochs (30 min) with every stage.
CODES = [0] * 6 + [1] * 3 + [2] * 15 + [3] * 10 + [2] * 6 + [4] * 10 + [0] * 4 + [2] * 6
#: First epoch scored with the keyboard.
FIRST = 12
#: Eleven stage keys (every key of the contract); the eleventh is taken back with "u".
KEYS = ["w", "1", "2", "3", "r", "0", "5", "W", "R", "2", "3"]
#: The stages of the ten corrections that remain.
CORRECTED = ["W", "N1", "N2", "N3", "R", "W", "R", "W", "R", "N2"]
#: RGB of a reviewed epoch's mark under the navigator's hypnogram (review.js).
REVIEWED_MARK = [43, 138, 62]


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for module, how in (("playwright.sync_api", "pip install playwright"),
                        ("fastapi", "pip install 'hypnoscope[review]'"),
                        ("uvicorn", "pip install 'hypnoscope[review]'")):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{module.split('.')[0]} is not installed ({how})"
    if CHROMIUM is None:
        return ("Chromium is not installed (make browser, or apt-get install chromium): the "
                "browser tests drive Debian's chromium")
    return None


@pytest.fixture(scope="module")
def browser():
    """Chromium under Playwright; skips without them (fails when env CI is set)."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set and the browser tests must run in CI")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def staged(tmp_path_factory, browser):
    """A simulated recording staged into an output folder (the review's first step)."""
    from hypnoscope.review.session import ReviewSession
    from hypnoscope.simulate import simulate_night, write_sleepedf_pair

    root = tmp_path_factory.mktemp("review-browser")
    raw = simulate_night(Hypnogram(np.array(CODES)), seed=5, mode="telemetry")
    psg, _ = write_sleepedf_pair(raw, None, root / "rec", STEM)
    ReviewSession.open(psg, out=root / "staged").close()
    return psg, root / "staged", raw.info["meas_date"].replace(tzinfo=None)


@pytest.fixture
def folder(staged, tmp_path):
    """A fresh copy of the staged output folder (each test reviews its own)."""
    out = tmp_path / "out"
    shutil.copytree(staged[1], out)
    return out


class Server:
    """The review server of ``hypnoscope review`` (the pieces of
    :func:`hypnoscope.review.app.serve`: a socket on a free port of 127.0.0.1, the guarded
    app, uvicorn) on ``folder``, in a thread until :meth:`stop`."""

    def __init__(self, folder: Path) -> None:
        import uvicorn

        from hypnoscope.review.app import (
            bind_socket,
            create_app,
            new_token,
            review_url,
            server_config,
        )
        from hypnoscope.review.session import ReviewSession

        self.session = ReviewSession.open(folder)
        self.token = new_token()
        sock = bind_socket(0)
        port = sock.getsockname()[1]
        self.url = review_url(port, self.token)
        app = create_app(self.session, self.token, port=port)
        self.server = uvicorn.Server(server_config(app, sock))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        self.sock = sock
        if not _wait_until(lambda: self.server.started, timeout=20):
            self.stop()
            raise AssertionError(f"the review server on {folder} did not start")

    def get(self, path: str) -> dict:
        """A GET of the API, with the token."""
        base = self.url.split("?")[0].rstrip("/")
        req = urllib.request.Request(base + path, headers={"X-Review-Token": self.token})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        """Stop the server (as Ctrl-C does) and close the recording; once is enough."""
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(timeout=15)
            self.sock.close()
            self.session.close()


@pytest.fixture
def server(folder):
    """The review server on the test's folder."""
    srv = Server(folder)
    yield srv
    srv.stop()


@pytest.fixture
def page(browser):
    """A fresh browser page (1400 x 900) that fails the test on a script error or an
    error on the console (a refused request, a Content-Security-Policy violation)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield pg
    context.close()
    assert errors == []


# ---------------------------------------------------------------- page helpers

def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", state="attached")
    _wait_for_page(page)


def _wait_for_page(page) -> None:
    """Until the 30-s page of the epoch on screen is drawn."""
    epoch = page.get_attribute("#status", "data-epoch")
    page.wait_for_selector(f"#signals[data-epoch='{epoch}']", state="attached")


def _epoch(page) -> int:
    return int(page.get_attribute("#status", "data-epoch"))


def _shown_review(page) -> str:
    return page.inner_text("#status-reviewed")


def _ink(page) -> list[dict]:
    """Per lane of the signal canvas: the fraction of pixel columns with a trace pixel
    (luminance below 160; the grid is lighter) and the number of such pixels."""
    return page.evaluate("""() => {
      const canvas = document.getElementById("signals");
      const ratio = canvas.width / canvas.clientWidth;
      const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      return shownChannels().map((channel, lane) => {
        const top = Math.ceil((AXIS_PX + lane * state.lanePx) * ratio) + 1;
        const bottom = Math.floor((AXIS_PX + (lane + 1) * state.lanePx) * ratio) - 1;
        let columns = 0, pixels = 0;
        for (let x = 0; x < canvas.width; x++) {
          let inked = false;
          for (let y = top; y < bottom; y++) {
            const i = 4 * (y * canvas.width + x);
            if (0.3 * px[i] + 0.59 * px[i + 1] + 0.11 * px[i + 2] < 160) {
              inked = true; pixels++;
            }
          }
          if (inked) columns++;
        }
        return {name: channel.name, columns: columns / canvas.width, pixels};
      });
    }""")


def _navigator_x(page, epoch: int) -> float:
    """Page x of the middle of ``epoch`` in the navigator."""
    box = page.locator("#navigator").bounding_box()
    inner = page.evaluate("""(epoch) => {
      const c = document.getElementById("navigator");
      return c.clientLeft + epochX(epoch + 0.5, c.clientWidth);
    }""", epoch)
    return box["x"] + inner


def _click_navigator(page, epoch: int) -> None:
    box = page.locator("#navigator").bounding_box()
    page.mouse.click(_navigator_x(page, epoch), box["y"] + box["height"] * 0.6)
    _wait_for_page(page)


def _reviewed_marks(page) -> list[list[int]]:
    """RGB of the navigator's reviewed-mark row in the middle of each epoch."""
    return page.evaluate("""() => {
      const c = document.getElementById("navigator");
      const ratio = c.width / c.clientWidth;
      const ctx = c.getContext("2d");
      const y = Math.round((c.clientHeight - 3) * ratio);
      return state.night.reviewed.map((_, epoch) => {
        const x = Math.round(epochX(epoch + 0.5, c.clientWidth) * ratio);
        return Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3));
      });
    }""")


def _wait_until(check, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# ---------------------------------------------------------------- tests

def test_page_draws_controls_and_navigator(server, page, staged):
    start = staged[2]
    _open(page, server.url)
    night = server.get("/api/night")
    assert _epoch(page) == 0 and page.inner_text("#recording") == f"{STEM}-PSG.edf"
    # EEG, EOG and EMG are drawn, each lane inked across (nearly) the whole page
    ink = _ink(page)
    assert [lane["name"] for lane in ink] == [c["name"] for c in night["channels"]
                                              if c["role"] in ("eeg", "eog", "emg")]
    assert len(ink) == 4 and all(lane["columns"] > 0.95 for lane in ink), ink
    # scale: "+" on the first channel, fewer µV per lane height: a taller trace, more ink
    controls = page.locator("#channel-controls .channel").first
    assert controls.locator(".scale-value").inner_text() == "±75 µV"
    controls.get_by_role("button", name="+").click()
    assert controls.locator(".scale-value").inner_text() == "±50 µV"
    assert _ink(page)[0]["pixels"] > ink[0]["pixels"]
    assert [lane["pixels"] for lane in _ink(page)[1:]] == [lane["pixels"] for lane in ink[1:]]
    # filter: a 10-Hz high cut on the first channel is what the next page request asks for
    name = ink[0]["name"]
    with page.expect_response(lambda r: "/api/page/0" in r.url) as answer:
        controls.locator("select").nth(1).select_option("10")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(answer.value.url).query)
    assert json.loads(query["filters"][0])[name] == [0.3, 10]
    assert answer.value.json()["channels"][0]["filter"] == [0.3, 10.0]
    # a low cut at the high cut is refused on the page, the band in use kept
    controls.locator("select").nth(0).select_option("10")
    assert "low cut must be below the high cut" in page.inner_text("#status-message")
    assert controls.locator("select").nth(0).input_value() == "0.3"
    # the navigator: a click jumps to the epoch under it; the clock follows the recording's
    _click_navigator(page, 30)
    assert _epoch(page) == 30
    assert page.inner_text("#status-epoch") == f"Epoch 31 / {len(CODES)}"
    clock = (start + _dt.timedelta(seconds=30 * 30)).strftime("%H:%M:%S")
    assert page.inner_text("#status-clock") == clock
    assert _wait_until(lambda: server.get("/api/night")["position"] == 30)
    # n: the first epoch of the check queue (lowest confidence first)
    first = [q["epoch"] for q in night["queue"] if q["epoch"] != 30][0]
    page.keyboard.press("n")
    _wait_for_page(page)
    assert _epoch(page) == first
    # keys typed into the scorer field are text, not scores
    page.click("#scorer")
    page.keyboard.type("W1")
    assert page.input_value("#scorer") == "W1" and _epoch(page) == first
    assert page.get_attribute("body", "data-pending") == "0"
    assert server.get("/api/night")["reviewed"] == [None] * len(CODES)


def _score_with_keys(page) -> None:
    page.fill("#scorer", SCORER)
    page.press("#scorer", "Enter")  # leaves the field: keys score again
    _click_navigator(page, FIRST)
    for key in KEYS:
        page.keyboard.press(key)
    page.keyboard.press("u")
    page.wait_for_selector("body[data-pending='0']", state="attached")
    _wait_for_page(page)


def _check_saved(folder: Path, auto: Hypnogram) -> None:
    expected = list(auto.labels)
    expected[FIRST:FIRST + 10] = CORRECTED
    for suffix in ("tsv", "edf", "xml"):
        saved = read_hypnogram(folder / f"{STEM}.reviewed.{suffix}")
        assert saved.labels == expected, suffix
    table = (folder / f"{STEM}.reviewed.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in table if not line.startswith("#")]
    scorers = [row[rows[0].index("scorer")] for row in rows[1:]]
    assert scorers == ["automatic"] * FIRST + [SCORER] * 10 + ["automatic"] * (
        len(CODES) - FIRST - 10)
    assert SCORER in (folder / f"{STEM}.reviewed.xml").read_text(encoding="utf-8")
    state = json.loads((folder / f"{STEM}.review.json").read_text(encoding="utf-8"))
    assert state["scorer"] == SCORER and state["position"] == FIRST + 10
    assert {int(e): m["stage"] for e, m in state["reviewed"].items()} == {
        FIRST + i: s for i, s in enumerate(CORRECTED)}
    assert all(m["scorer"] == SCORER for m in state["reviewed"].values())
    assert len(state["history"]) == 10  # eleven scores, one taken back
    # the automatic scoring is untouched
    assert read_hypnogram(folder / f"{STEM}.hypnogram.tsv").labels == auto.labels


def _check_shown(page) -> None:
    """The corrections on the page: status line per epoch (arrow keys) and navigator;
    ends on epoch FIRST + 2."""
    _click_navigator(page, FIRST + 10)
    assert _shown_review(page) == "reviewed –"
    for i in reversed(range(10)):
        page.keyboard.press("ArrowLeft" if i % 2 else "PageUp")
        assert _epoch(page) == FIRST + i
        assert _shown_review(page) == f"reviewed {CORRECTED[i]}"
    page.keyboard.press("PageDown")
    page.keyboard.press("ArrowRight")
    assert _epoch(page) == FIRST + 2
    # the navigator marks the reviewed epochs (the current one is shaded: not sampled)
    marked = [e for e, rgb in enumerate(_reviewed_marks(page))
              if e != FIRST + 2 and rgb == REVIEWED_MARK]
    assert marked == [FIRST + i for i in range(10) if i != 2]


def test_keyboard_scoring_is_saved_and_reopened(server, page, folder):
    from playwright.sync_api import expect

    auto = read_hypnogram(folder / f"{STEM}.hypnogram.tsv")
    _open(page, server.url)
    _score_with_keys(page)
    # undo took back the eleventh score and showed its epoch, unreviewed again
    assert _epoch(page) == FIRST + 10 and _shown_review(page) == "reviewed –"
    assert _wait_until(lambda: server.get("/api/night")["position"] == FIRST + 10)
    _check_saved(folder, auto)
    page.click("#refresh-summary")
    expect(page.locator("#summary-reviewed")).to_have_text("10")
    # reload: where the scorer stopped, with the corrections and the scorer's name
    _open(page, server.url)
    assert _epoch(page) == FIRST + 10 and page.input_value("#scorer") == SCORER
    _check_shown(page)
    assert _wait_until(lambda: server.get("/api/night")["position"] == FIRST + 2)
    # reopen: a new server on the same folder continues the review
    server.stop()
    again = Server(folder)
    try:
        _open(page, again.url)
        assert _epoch(page) == FIRST + 2 and page.input_value("#scorer") == SCORER
        _check_shown(page)
    finally:
        again.stop()
