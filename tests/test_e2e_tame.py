"""End to end: a person tames a flow in the real app (headless Chromium). On synthfaces-flow they see an identity's
training images offered for forgetting; on toy-flow they forget the centre mode of the ring, watch the run, and
read the result (quantile table, NLL histograms, the toy's density before and after). Screenshots of each stage go
to artifacts/screenshots/ (the same server and helpers as test_e2e_app)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_e2e_app import (CHROMIUM, CHROMIUM_ARGS, _assert_clean, _goto, _pick, _shot, _wait_idle,  # noqa: F401
                          app_url)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


def _set_number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _wait_idle(page)


def test_a_person_tames_a_flow_and_reads_the_result(app_url, tmp_path):  # noqa: F811 - the fixture
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1000},
        )
        page = context.pages[0] if context.pages else context.new_page()
        try:
            page.goto(app_url)
            _wait_idle(page)
            _pick(page, "Zoo model", "synthfaces-flow · flow")
            _goto(page, "Tame")
            page.get_by_role("heading", name="Tame a flow").wait_for()
            page.wait_for_selector('[data-testid="stImage"]', timeout=180_000)  # the identity's images
            _assert_clean(page, "tame setup")
            _shot(page, "13-tame-identity")

            _pick(page, "Zoo model", "toy-flow · flow")
            page.locator('[data-testid="stButtonGroup"] button', has_text="Label").click()
            _wait_idle(page)
            page.get_by_text("Weights, stopping and ablations").click()
            _set_number(page, "Max iterations", 150)
            _set_number(page, "Learning rate", 0.0005)
            page.get_by_role("button", name="Start taming").click()
            page.get_by_role("button", name="Download the tamed model (.zip)").wait_for(timeout=300_000)
            _wait_idle(page)
            _assert_clean(page, "tame finished")
            assert page.locator('[data-testid="stPlotlyChart"]').count() >= 3  # live NLL, histograms, toy density
            _shot(page, "14-tame-toy-finished")
        finally:
            context.close()
