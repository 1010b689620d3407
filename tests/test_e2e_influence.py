"""End to end: a person asks which training points helped or hurt the paper's 2-D FCGAN in the real app (headless
Chromium): they start an estimate, read the sign rule and the map of influence when it finishes, send the most
harmful points to the forget set, and verify the finished estimate against counterfactual retraining.
Screenshots go to artifacts/screenshots/ (the same server and helpers as test_e2e_app)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_e2e_app import (CHROMIUM, _assert_clean, _goto, _pick, _shot, _wait_idle, app_url, browser,  # noqa: F401
                          set_number)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


def test_a_person_ranks_verifies_and_forgets_influential_training_points(app_url, tmp_path):  # noqa: F811
    with browser(tmp_path) as (context, page):
        page.goto(app_url)
        _wait_idle(page)
        _pick(page, "Zoo model", "influence-fcgan · gan")
        _goto(page, "Influence")
        page.get_by_role("heading", name="Influence of training data").wait_for()
        set_number(page, "Latents |Z'|", 200)
        command = page.locator('[data-testid="stCode"]').first.inner_text()
        assert "python -m core influence influence-fcgan --metric all --trace-epochs 1" in command
        page.get_by_role("button", name="Estimate influence").click()
        page.get_by_role("button", name="Verify").wait_for(timeout=600_000)
        _wait_idle(page)
        _assert_clean(page, "influence estimated")
        assert page.get_by_text("negative means j hurt").first.is_visible()
        assert page.locator('[data-testid="stPlotlyChart"]').count() >= 2  # the map and the distribution
        _shot(page, "20-influence-estimated")

        page.get_by_role("button", name="Forget these").click()
        _wait_idle(page)
        page.get_by_text("Redact the forget set (20 picked)").wait_for(timeout=60_000)
        set_number(page, "Targets", 6)
        page.get_by_role("button", name="Verify").click()
        page.get_by_text("Verdict: check influence estimate").first.wait_for(timeout=600_000)
        _wait_idle(page)
        _assert_clean(page, "influence verified")
        _shot(page, "21-influence-verified")
