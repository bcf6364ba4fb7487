"""report.html in a real browser (headless Chromium from Debian, installed by ``make setup`` as root): the page
loads, every image loads and every audio source exists, the filter changes what is shown; a screenshot is
kept next to the report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from urllib.parse import quote, unquote

import pytest

from lossbench.benchmarks.spec import spec_from_dict
from lossbench.benchmarks.sweep import run_sweep


pytestmark = [pytest.mark.needs_tools, pytest.mark.slow]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI: chromium is missing; 'make setup' installs it (Debian package chromium) as root")
        pytest.skip("chromium not installed (make setup installs it as root)")
    return exe


def _dom(exe: str, url: str) -> str:
    out = subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    spec = spec_from_dict({"name": "b", "clips": 2, "metrics": ["pesq_wb", "stoi"], "examples": 2,
                           "concealments": ["native", "zeros"],
                           "codec": [{"spec": "pcm", "label": "PCM"}, {"spec": "opus:bitrate=12000", "label": "Opus 12k"}],
                           "channel": [{"model": "bernoulli", "loss": [0.0, 0.2]}]})
    run_sweep(spec, d, progress=False)
    from lossbench.reports import write_report

    write_report(d)
    return d


def test_report_loads_resolves_and_filters_in_chromium(run):
    exe = _chromium()
    page = run / "report.html"
    dom = _dom(exe, page.as_uri())
    assert "<h1>lossbench run" in dom
    assert re.search(r'data-broken-images="0"', dom), "an image of the page did not load"
    n_img = len(re.findall(r"<img ", dom))
    assert n_img >= 5
    audio = re.findall(r"<audio [^>]*src=\"([^\"]+)\"", dom)
    assert audio and all((run / unquote(a)).is_file() for a in audio), "an audio source does not exist"
    shown_all = int(re.search(r'data-shown="(\d+)"', dom).group(1))
    rows = len(re.findall(r"<tr class=\"example\"", dom))
    assert shown_all == rows > 0
    opus = "Opus 12k · 20 ms packets"  # the report labels each system with its packet length
    dom_f = _dom(exe, page.as_uri() + "#system=" + quote(opus) + "&loss=" + quote("20 %"))
    shown = int(re.search(r'data-shown="(\d+)"', dom_f).group(1))
    assert 0 < shown < shown_all
    visible = re.findall(r'<tr class="example" data-system="([^"]+)" data-channel="[^"]+" data-loss="([^"]+)"(?: style="")?>',
                         dom_f)
    assert visible and all(s == opus and lv == "20 %" for s, lv in visible)
    shot = run / "report.png"
    subprocess.run([exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1800",
                    "--virtual-time-budget=3000", f"--screenshot={shot}", page.as_uri()], capture_output=True,
                   timeout=120, check=True)
    assert shot.stat().st_size > 20_000


def test_the_report_folder_is_self_contained(run):
    text = (run / "report.html").read_text()
    assert "http://" not in text and "https://" not in text  # no CDN, no network at view time
    for ref in re.findall(r"(?:src|href)='([^']+)'", text):
        assert (run / ref).exists(), ref
