"""The HTML report: self-contained (inlined PNGs, no external resources), escaped tables, and in headless Chromium
(started here) it loads without console errors and every figure renders."""

import base64
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from infscale.report.html import fmt, img_tag, table
from infscale.workflows.demo import quick_config, run_demo

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    return Path(run_demo(quick_config(), out)["report"])


def test_img_tag_inlines_the_png_bytes(tmp_path):
    png = tmp_path / "x.png"
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    png.write_bytes(data)
    tag = img_tag(png, 'a "quoted" <alt>')
    src = re.search(r'src="data:image/png;base64,([^"]+)"', tag).group(1)
    assert base64.b64decode(src) == data
    assert 'alt="a &quot;quoted&quot; &lt;alt&gt;"' in tag


def test_table_escapes_and_formats():
    html = table(["name", "value"], [["<b>", 0.000123456], ["n", 1234567], ["nan", float("nan")]])
    assert "&lt;b&gt;" in html and "<b>" not in html
    assert "0.0001235" in html and "1,234,567" in html and ">-<" in html
    assert fmt(None) == "-" and fmt(True) == "yes" and fmt(2.5) == "2.5"


def test_report_is_self_contained(report):
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # no resource outside the file: every src/href is a data URI
    for ref in re.findall(r'(?:src|href)=["\']([^"\']*)["\']', page):
        assert ref.startswith("data:"), ref
    assert "<script" not in page
    for section in ("Fitted scaling laws", "Latency vs shape", "Pareto frontier", "Recommendation",
                    "accuracy vs FLOPs", "Compute-optimal choice"):
        assert section.lower() in page.lower(), section


def _driver(user_data_dir: str):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in FLAGS + [f"--user-data-dir={user_data_dir}", "--window-size=1200,900"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver); "
                           "CI installs them in .ci/run")
def test_report_in_headless_chromium(report):
    profile = tempfile.mkdtemp(prefix="infscale-chromium-")
    try:
        driver = _driver(profile)
        try:
            driver.get(report.resolve().as_uri())
            assert driver.execute_script("return document.readyState") == "complete"
            assert driver.title == "infscale demo report"
            imgs = driver.execute_script(
                "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
            assert len(imgs) == 8  # laws, latency, two plan frontiers, tts accuracy vs FLOPs, saturation, lifecycle x2
            for alt, complete, width, height in imgs:
                assert complete and width > 0 and height > 0, alt
            errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
            assert errors == []
            # the page renders its tables (the recommendation box is visible text)
            assert "Recommendation:" in driver.find_element("tag name", "body").text
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
