"""Screenshots of hypnoscope's HTML reports and review app for the documentation (``docs/img/``).

Makes the README's simulated narcolepsy-like MSLT day (``hypnoscope simulate --protocol
mslt --profile narcolepsy-like --seed 1``), stages it with ``hypnoscope mslt`` and takes
a screenshot of the report; and opens a simulated night (``hypnoscope simulate
--n-subjects 1 --mode telemetry --seed 1``) in ``hypnoscope review``, corrects the first
epochs of its check queue to the simulated scoring with the keyboard, and takes the review
page and its summary panel. Playwright drives Chromium (Debian's ``chromium`` package;
``pip install playwright``). Nothing is downloaded.

Usage (from the repository root)::

    python docs/screenshots.py            # writes docs/img/mslt-report.png, review-*.png
    python docs/screenshots.py --only review --chromium /usr/bin/chromium
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"


def mslt_report(work: Path) -> Path:
    """The MSLT report of the README's simulated day, made in ``work``."""
    run = [sys.executable, "-m", "hypnoscope"]
    subprocess.run([*run, "simulate", "--protocol", "mslt", "--profile", "narcolepsy-like",
                    "--seed", "1", "--out", str(work / "naps")], check=True)
    subprocess.run([*run, "mslt", str(work / "naps"), "--out", str(work / "naps-report")],
                   check=True)
    return work / "naps-report" / "mslt_report.html"


def screenshot(html: Path, png: Path, chromium: str, width: int = 1200,
               height: int = 1500) -> None:
    """A PNG of the top ``width`` x ``height`` pixels of ``html``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(html.as_uri())
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=False)
        browser.close()


#: Epochs of the review's check queue corrected for the screenshots.
N_CORRECTIONS = 6
#: The review app's keys of the stages (notes/review_api.md).
STAGE_KEYS = {"W": "w", "N1": "1", "N2": "2", "N3": "3", "R": "r"}


def review_server(work: Path) -> tuple[subprocess.Popen, str, Path]:
    """``hypnoscope review`` on a simulated night (staged first), its URL and the
    simulated scoring."""
    run = [sys.executable, "-m", "hypnoscope"]
    subprocess.run([*run, "simulate", "--n-subjects", "1", "--mode", "telemetry", "--seed",
                    "1", "--out", str(work / "night")], check=True)
    psg = next((work / "night").glob("*-PSG.edf"))
    truth = next((work / "night").glob("*-Hypnogram.edf"))
    proc = subprocess.Popen([*run, "review", str(psg), "--out", str(work / "review")],
                            stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("open http"):
            return proc, line.split()[1], truth
    proc.wait()
    raise RuntimeError(f"hypnoscope review stopped (exit code {proc.returncode})")


def correct_queue(page, url: str, truth: Path) -> None:
    """Score the first :data:`N_CORRECTIONS` epochs of the check queue as the simulated
    scoring has them, with the keys a scorer uses (``n`` then the stage key)."""
    from hypnoscope.io.hypnograms import read_hypnogram

    labels = read_hypnogram(truth).labels
    req = urllib.request.Request(url.replace("/?token=", "/api/night?token="))
    with urllib.request.urlopen(req) as resp:
        queue = [q["epoch"] for q in json.loads(resp.read())["queue"]]
    page.fill("#scorer", "A. Scorer (simulated)")
    page.press("#scorer", "Enter")
    for epoch in queue[:N_CORRECTIONS]:
        page.keyboard.press("n")
        page.keyboard.press(STAGE_KEYS.get(labels[epoch], "2"))
    page.keyboard.press("ArrowLeft")  # back to the last corrected epoch
    page.wait_for_selector("body[data-pending='0']", state="attached")
    page.click("#refresh-summary")
    page.wait_for_timeout(800)


def review_screenshots(work: Path, chromium: str) -> list[Path]:
    """The review page (1400 x 900) and its summary panel, of a simulated night with the
    first epochs of its check queue corrected."""
    from playwright.sync_api import sync_playwright

    proc, url, truth = review_server(work)
    pngs = [OUT / "review-page.png", OUT / "review-summary.png"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", state="attached")
            correct_queue(page, url, truth)
            page.screenshot(path=str(pngs[0]))
            page.evaluate("() => { document.getElementById('summary-panel')"
                          ".style.maxHeight = 'none'; }")
            page.locator("#summary-panel").screenshot(path=str(pngs[1]))
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    return pngs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--only", choices=["mslt", "review"],
                    help="only the MSLT report or only the review app (default: both)")
    args = ap.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hypnoscope-shots-") as tmp:
        written = []
        if args.only in (None, "mslt"):
            html = mslt_report(Path(tmp))
            screenshot(html, OUT / "mslt-report.png", args.chromium)
            written.append(OUT / "mslt-report.png")
        if args.only in (None, "review"):
            written += review_screenshots(Path(tmp), args.chromium)
    for png in written:
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
