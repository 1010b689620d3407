"""End to end: a person tames a flow in the real app (headless Chromium). On synthfaces-flow they see an identity's
training images offered for forgetting and ask for an attribute's counterfactual (D_F from the flow's own samples);
on toy-flow they forget the centre mode of the ring, watch the run, and
read the result (quantile table, NLL histograms, the toy's density before and after). Screenshots of each stage go
to artifacts/screenshots/ (the same server and helpers as test_e2e_app)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_e2e_app import (CHROMIUM, _assert_clean, _goto, _pick, _shot, _wait_idle, app_url, browser,  # noqa: F401
                          set_number)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


def test_a_person_tames_a_flow_and_reads_the_result(app_url, tmp_path):  # noqa: F811 - the fixture
    with browser(tmp_path) as (context, page):
        page.goto(app_url)
        _wait_idle(page)
        _pick(page, "Zoo model", "synthfaces-flow · flow")
        _goto(page, "Tame")
        page.get_by_role("heading", name="Tame a flow").wait_for()
        page.wait_for_selector('[data-testid="stImage"]', timeout=180_000)  # the identity's images
        _assert_clean(page, "tame setup")
        _shot(page, "13-tame-identity")
        page.locator('[data-testid="stButtonGroup"] button', has_text="Attribute").click()
        page.get_by_text("the flow's own samples with it (counterfactual)").click()
        _wait_idle(page)
        command = page.locator('[data-testid="stCode"]').first.inner_text()
        assert "python -m core tame synthfaces-flow --forget samples:glasses" in command, command

        _pick(page, "Zoo model", "toy-flow · flow")
        page.locator('[data-testid="stButtonGroup"] button', has_text="Label").click()
        _wait_idle(page)
        page.get_by_text("Weights, stopping and ablations").click()
        set_number(page, "Max iterations", 150)
        set_number(page, "Learning rate", 0.0005)
        command = page.locator('[data-testid="stCode"]').first.inner_text()
        assert "python -m core tame toy-flow --forget label=0" in command and "--max-iterations 150" in command
        page.get_by_role("button", name="Start taming").click()
        page.get_by_role("button", name="Download the tamed model (.zip)").wait_for(timeout=300_000)
        _wait_idle(page)
        _assert_clean(page, "tame finished")
        assert page.locator('[data-testid="stPlotlyChart"]').count() >= 3  # live NLL, histograms, toy density
        verdict = page.locator('[class*="st-key-tame_verdict_"]')
        verdict.scroll_into_view_if_needed()
        text = verdict.inner_text()
        assert "Verdict: forget label 0 in toy-flow" in text
        assert re.search(r"likelihood quantile of the forget images fell \d+%", text), text
        assert re.search(r"(reached the threshold|hit the iteration cap) after \d+ iterations", text), text
        assert "bits/dim on D_R" in text
        assert verdict.locator('[data-testid="stPlotlyChart"]').count() == 1  # NLLs against the threshold
        _shot(page, "14-tame-toy-finished")
