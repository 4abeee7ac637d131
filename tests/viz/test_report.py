"""The HTML report: self-contained, and working in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

import cnnzoo
from cnnzoo.viz import write_report, write_reports

pytest.importorskip("graphviz", reason="the viz extra is not installed")
pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is absent")

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is absent (Debian: apt-get install chromium)"
)


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


def test_page_is_self_contained(tmp_path):
    page = write_report("resnet20_cifar", tmp_path).read_text()
    # nothing is fetched: no external scripts, styles, images or fonts
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", page)
    assert "@import" not in page and "url(http" not in page
    assert page.count("<svg") == 4  # the diagram and three charts
    rows = page.split("<tbody>")[1].count("<tr>")
    assert rows == len(cnnzoo.summary("resnet20_cifar").all_layers)
    assert "output: (32 + 2*1 - 3) / 1 + 1 = 32" in page  # the --explain arithmetic


def test_index_links_every_page(tmp_path):
    index = write_reports(["lenet5", "alexnet"], tmp_path)
    text = index.read_text()
    assert 'href="lenet5.html"' in text and 'href="alexnet.html"' in text
    assert (tmp_path / "lenet5.html").exists() and (tmp_path / "alexnet.html").exists()


def test_cli_report(tmp_path, capsys):
    from cnnzoo.cli import main

    assert main(["report", "lenet5", "--out", str(tmp_path)]) == 0
    assert f"wrote {tmp_path / 'lenet5.html'}" in capsys.readouterr().out
    assert main(["report", "--out", str(tmp_path)]) == 2  # neither a model nor --all


@needs_chromium
def test_report_in_headless_chromium(tmp_path):
    name = "googlenet"  # branches, a concat per module, LRN, an unused auxiliary head
    page = write_report(name, tmp_path / "report")
    dumped = _chromium(tmp_path, "--dump-dom", page.as_uri())
    found = re.search(r'<pre id="selfcheck">([^<]*)</pre>', dumped.stdout)
    assert found and found.group(1), "the page's self-check did not run"
    check = json.loads(found.group(1))
    layers = len(cnnzoo.summary(name).all_layers)
    assert check["rows"] == check["expected"] == layers  # one row per layer
    assert check["sortDescending"] and check["sortAscending"] and check["largestFirst"]
    assert check["restored"]
    assert check["errors"] == []  # window.onerror, failed loads and console.error
    assert not [line for line in dumped.stderr.splitlines() if ":CONSOLE(" in line]

    # the check can fail: an error thrown by a script on the page is reported
    broken = page.with_name("broken.html")
    broken.write_text(
        page.read_text().replace("<pre id=", "<script>noSuchFunction()</script><pre id=", 1)
    )
    dumped = _chromium(tmp_path, "--dump-dom", broken.as_uri())
    check = json.loads(re.search(r'<pre id="selfcheck">([^<]*)</pre>', dumped.stdout).group(1))
    assert any("noSuchFunction" in e for e in check["errors"])

    shot = tmp_path / f"{name}-report.png"
    _chromium(tmp_path, "--window-size=1280,2400", f"--screenshot={shot}", page.as_uri())
    assert shot.read_bytes().startswith(b"\x89PNG")
    print(f"screenshot: {shot}")
