"""Screenshots of hypnoscope's HTML reports for the documentation (``docs/img/``).

Makes the README's simulated narcolepsy-like MSLT day (``hypnoscope simulate --protocol
mslt --profile narcolepsy-like --seed 1``), stages it with ``hypnoscope mslt`` and takes
a screenshot of the report with Playwright driving Chromium (Debian's ``chromium``
package; ``pip install playwright``). Nothing is downloaded.

Usage (from the repository root)::

    python docs/screenshots.py            # writes docs/img/mslt-report.png
    python docs/screenshots.py --chromium /usr/bin/chromium
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hypnoscope-shots-") as tmp:
        html = mslt_report(Path(tmp))
        screenshot(html, OUT / "mslt-report.png", args.chromium)
    print(f"wrote {OUT / 'mslt-report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
