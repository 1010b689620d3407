"""End to end: a person reads where mnist-acgan is wrong in the real app (headless Chromium): the histograms of
GOLD's two terms, samples sorted by GOLD, a real image the model fits worst ticked into the forget set, and
rejection sampling with its acceptance rate. Screenshots go to artifacts/screenshots/ (test_e2e_app's helpers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_e2e_app import CHROMIUM, _assert_clean, _goto, _shot, _wait_idle, app_url, browser  # noqa: F401

WAIT = 600  # seconds: scoring shares 2 CPU cores with everything else


def _number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _wait_idle(page, WAIT)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


def test_a_person_finds_where_a_conditional_gan_is_wrong(app_url, tmp_path):  # noqa: F811 - the fixture
    with browser(tmp_path) as (context, page):
        page.goto(app_url)
        _wait_idle(page, WAIT)
        page.locator('[data-testid="stSelectbox"]', has_text="Zoo model").first.click()
        page.get_by_role("option", name="mnist-acgan · gan", exact=True).click()
        _wait_idle(page, WAIT)
        _goto(page, "GOLD")
        page.get_by_role("heading", name="GOLD: where a conditional GAN is wrong").wait_for(timeout=WAIT * 1000)
        _wait_idle(page, WAIT)
        _number(page, "Generated samples", 500)
        _number(page, "Real images", 500)
        page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=WAIT * 1000)
        _assert_clean(page, "gold scores")
        assert page.locator('[data-testid="stMetric"]', has_text="mean GOLD, generated").count() == 1
        _shot(page, "20-gold-scores")

        page.get_by_role("tab", name="Sorted samples").click()
        tiles = page.locator('[class*="st-key-tile-gold_real-"]')
        tiles.first.wait_for(timeout=120_000)
        tiles.first.locator("label").click()
        _wait_idle(page, WAIT)
        _assert_clean(page, "gold sorted")
        assert tiles.first.locator('input[type="checkbox"]').is_checked()
        _shot(page, "21-gold-sorted")

        page.get_by_role("tab", name="Rejection sampling").click()
        _number(page, "Burn-in (fixes M and γ)", 1000)
        page.get_by_role("button", name="Draw with rejection").click()
        rate = page.locator('[data-testid="stMetric"]', has_text="acceptance rate")
        rate.wait_for(timeout=WAIT * 1000)
        _wait_idle(page, WAIT)
        _assert_clean(page, "gold rejection")
        assert re.fullmatch(r"\d+(\.\d)?%", rate.locator('[data-testid="stMetricValue"]').inner_text())
        _shot(page, "22-gold-rejection")
