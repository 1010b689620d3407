"""End to end: the real app (`streamlit run app.py`) driven by headless Chromium, as a person would use it.

One browser session walks every page: the overview, Explore (re-sample), Data (click a gallery image into the
forget set, lasso points in the embedding, save the set by name), and Runs (start a job, cancel it, see it
marked cancelled). Any exception element or "went wrong inside Lethe" message fails the test. A screenshot of
every page is saved under artifacts/screenshots/ (git ignores artifacts/).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from core.models.archive import zip_model
from core.zoo.registry import zoo_folder

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


@contextlib.contextmanager
def browser(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """(context, page) of a headless Debian Chromium with a fresh profile under `tmp_path`, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1000},
        )
        try:
            yield context, context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def set_number(page, label: str, value) -> None:
    """Type `value` into the number input labelled `label` and wait for the rerun."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _wait_idle(page)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """`streamlit run app.py` on 127.0.0.1 and a free port, with its own run store and Lethe home."""
    root = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    env = {**os.environ, "LETHE_HOME": str(root / "home"), "LETHE_RUNS": str(root / "runs")}
    log = open(root / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not become healthy:\n{(root / 'streamlit.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _wait_idle(page, timeout: float = 120) -> None:
    """Wait until the script has run to its end (Streamlit marks the app root `notRunning`) and stays so."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout * 1000)
    page.wait_for_timeout(400)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout * 1000)


def _assert_clean(page, where: str) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"{where}: exception shown: {exceptions.first.inner_text()[:800]}"
    bugs = page.locator('[data-testid="stAlertContentError"]', has_text="went wrong inside Lethe")
    assert bugs.count() == 0, f"{where}: {bugs.first.inner_text()[:800]}"


def _shot(page, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main section, so grow the viewport to fit it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1440, "height": max(1000, min(int(height), 6000))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 1000})


NAV_LINKS = '[data-testid="stTopNavLink"], [data-testid="stSidebarNavLink"]'


def _goto(page, title: str) -> None:
    page.locator(NAV_LINKS, has_text=title).first.click()
    page.wait_for_timeout(300)
    _wait_idle(page)


def _forget_set_size(page) -> int:
    metric = page.locator('[data-testid="stMetric"]', has_text="Forget set size")
    return int(metric.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))


def _pick(page, box_label: str, option: str) -> None:
    """Choose `option` in the Streamlit selectbox labelled `box_label`."""
    page.locator('[data-testid="stSelectbox"]', has_text=box_label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    _wait_idle(page)


def _image_model() -> str:
    """The zoo model the walk-through explores: an image generator when one is shipped (as a person would pick)."""
    from core.zoo.registry import ZOO, zoo_folder

    shipped = [n for n in ZOO if (zoo_folder(n) / "model.safetensors").is_file()]
    preferred = ["mnist-dcgan", "mnist-acgan", "mnist-flow", "mnist-i2i", "mnist-lenet"]
    name = next(n for n in preferred if n in shipped)
    return f"{name} · {ZOO[name].family}"


def _lasso(page, chart) -> None:
    """Draw a closed lasso over the middle of a plotly chart's plotting area."""
    area = chart.locator(".nsewdrag").first.bounding_box()
    cx, cy, rx, ry = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2, area["width"] / 5, area["height"] / 5
    points = [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry + 2)]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def _names_shown_until_the_navigation_is_ready(page, timeout: float = 600) -> set[str]:
    """Every page name the navigation showed, polled from the first paint until app.py's "Overview" appears."""
    seen: set[str] = set()
    deadline = time.time() + timeout
    while time.time() < deadline:
        names = {text.strip().splitlines()[-1] for text in page.locator(NAV_LINKS).all_inner_texts() if text.strip()}
        seen |= names
        if "Overview" in names:
            return seen
        page.wait_for_timeout(50)
    pytest.fail(f"the navigation did not show app.py's pages within {timeout} s (it showed {sorted(seen)})")


def test_a_person_can_explore_build_a_forget_set_and_cancel_a_run(app_url, tmp_path):
    with browser(tmp_path) as (context, page):
        page.goto(app_url)  # the server's first page: a cold start never lists the pages/ folder's file names
        shown = _names_shown_until_the_navigation_is_ready(page)
        assert not shown & {"app", "home", "common", "verdict", "forget set", "explore"}, shown
        _wait_idle(page)
        page.wait_for_selector('[data-testid="stTable"]', timeout=60_000)
        _assert_clean(page, "overview")
        _shot(page, "01-overview")

        _pick(page, "Zoo model", _image_model())
        _goto(page, "Explore")
        page.wait_for_selector('[data-testid="stImage"]')
        page.get_by_role("button", name="Re-sample").click()
        _wait_idle(page)
        _assert_clean(page, "explore")
        _shot(page, "02-explore")
        page.get_by_role("tab", name="Model card").click()
        _shot(page, "03-explore-card")

        _goto(page, "Data & forget sets")
        tile = page.locator('[class*="st-key-tile-"]')  # the model's MNIST gallery
        tile.first.wait_for()
        assert _forget_set_size(page) == 0
        assert "not saved yet" not in page.inner_text("body")
        tile.first.click()  # on the image itself: a click anywhere on a thumbnail toggles it
        _wait_idle(page)
        assert _forget_set_size(page) == 1
        assert "not saved yet" in page.inner_text("body")  # the unsaved mark
        tile.nth(1).click()
        _wait_idle(page)
        tile.nth(1).click()  # a second click takes it out again
        _wait_idle(page)
        assert _forget_set_size(page) == 1
        _shot(page, "04-data-gallery")
        page.locator('[data-testid="stButtonGroup"] button', has_text="Embedding").click()
        _wait_idle(page)
        chart = page.locator('[data-testid="stPlotlyChart"]').first
        chart.wait_for()
        _lasso(page, chart)
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid="stMetric"]')]
                   .some(m => /Forget set size/.test(m.innerText) &&
                              parseInt(m.querySelector('[data-testid="stMetricValue"]').innerText.replace(/,/g, '')) > 1)""",
            timeout=60_000,
        )
        _wait_idle(page)
        page.get_by_label("Name", exact=True).fill("e2e-picks")
        page.get_by_role("button", name="Save forget set").click()
        _wait_idle(page)
        page.wait_for_selector("text=Saved forget sets")
        _assert_clean(page, "data")
        _shot(page, "05-data-embedding")

        _goto(page, "Runs")
        _pick(page, "Recipe of", "toy-gan")  # reports two losses every epoch
        page.get_by_text("Smoke (a few steps)").click()  # the full recipe: long enough to watch and cancel
        _wait_idle(page)
        page.get_by_role("button", name=re.compile(r"^Train ")).click()
        page.get_by_role("button", name="Cancel run").first.wait_for(timeout=60_000)
        page.wait_for_function(  # the live view redraws by itself as epochs report
            """() => [...document.querySelectorAll('[data-testid="stProgress"]')]
                   .some(p => /step [1-9]/.test(p.innerText))""", timeout=120_000)
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)  # the live loss curve
        _shot(page, "06-runs-live")
        page.get_by_role("button", name="Cancel run").first.click()
        page.locator('[data-testid="stMarkdownContainer"]', has_text="cancelled").first.wait_for(timeout=90_000)
        _wait_idle(page)
        _assert_clean(page, "runs")
        _shot(page, "07-runs-cancelled")

        # Close the browser tab; a new visit (straight to /runs) still finds the run with its events.
        page.close()
        page = context.new_page()
        page.goto(f"{app_url}/runs")
        _wait_idle(page)
        page.locator('[data-testid="stMarkdownContainer"]', has_text="cancelled").first.wait_for()
        _wait_idle(page)  # the status line draws before the downloads below it
        page.get_by_role("button", name="Events (.csv)").first.wait_for(timeout=30_000)
        assert page.get_by_role("button", name="Events (.csv)").count() == 1
        _assert_clean(page, "runs after reopening")

        # Upload a model as a zip in the sidebar and explore it.
        archive = tmp_path / "my-model.zip"
        archive.write_bytes(zip_model(zoo_folder("mnist-lenet")))
        page.locator('[data-testid="stSidebar"]').get_by_text("Upload", exact=True).click()
        _wait_idle(page)
        page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(archive))
        page.locator('[data-testid="stSidebar"]', has_text="trained on mnist").wait_for(timeout=60_000)
        _goto(page, "Explore")
        page.get_by_role("heading", name="Explore · mnist-lenet").wait_for()
        _assert_clean(page, "explore an uploaded model")
        _shot(page, "08-explore-uploaded")
