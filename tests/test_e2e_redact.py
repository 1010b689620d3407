"""End to end: a person redacts the digit 0 from mnist-dcgan in the real app (headless Chromium), watches the
invalidity curve and the redaction film fill in live, then opens the redaction-score analysis. Screenshots of
each stage go to artifacts/screenshots/ (the same server and helpers as test_e2e_app)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_e2e_app import CHROMIUM, _assert_clean, _goto, _shot, _wait_idle, app_url, browser, set_number  # noqa: F401

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


def test_a_person_redacts_a_digit_and_watches_it_vanish(app_url, tmp_path):  # noqa: F811 - the fixture
    with browser(tmp_path) as (context, page):
        page.goto(app_url)
        _wait_idle(page)
        _goto(page, "Redact")  # the default model is mnist-dcgan; the default set is label 0
        page.get_by_role("heading", name="Redact", exact=True).wait_for()
        page.wait_for_selector('[data-testid="stImage"]', timeout=120_000)  # pre-trained zeros
        _assert_clean(page, "redact")
        _shot(page, "09-redact-setup")

        set_number(page, "Epochs", 1)
        page.get_by_text("More hyperparameters").click()
        set_number(page, "Samples per measurement", 2000)
        set_number(page, "Batch size", 256)  # 15 steps: a short run to watch, on a shared CI machine
        page.get_by_role("button", name="Run redaction").click()
        page.wait_for_function(  # the live view redraws by itself as checkpoints report, with the time left
            """() => [...document.querySelectorAll('[data-testid="stProgress"]')]
                   .some(p => /training step [1-9].*about .* left/.test(p.innerText))""", timeout=600_000)
        assert page.evaluate(  # the page scrolled down to the live run
            "() => document.getElementById('redact-live-run').getBoundingClientRect().top < window.innerHeight")
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
        _assert_clean(page, "redact live")
        _shot(page, "10-redact-live")

        page.get_by_role("button", name="Download the redacted model (.zip)").wait_for(timeout=600_000)
        _wait_idle(page)
        assert page.locator('[data-testid="stMarkdownContainer"]', has_text="succeeded").count() >= 1
        _assert_clean(page, "redact finished")
        verdict = page.locator('[class*="st-key-redact_verdict_"]')  # the verdict card, first thing of the run
        verdict.scroll_into_view_if_needed()
        text = verdict.inner_text()
        assert "Verdict: forget label 0 of mnist-dcgan" in text
        assert re.search(r"invalidity fell \d+% \([\d.]+% (?:->|→) [\d.]+%\)", text), text  # markdown draws -> as →
        assert "quality cost: IS[mnist-lenet]" in text and "before:" in text and "±" in text
        assert "without* Ω" in text or "without Ω" in text  # why FID falls
        fall = int(re.search(r"invalidity fell (\d+)%", text).group(1))
        assert fall >= 50, text  # one epoch at the paper's settings removes most zeros
        assert verdict.locator('[data-testid="stPlotlyChart"]').count() == 1  # class shares before/after
        _shot(page, "11-redact-finished")

        page.get_by_role("tab", name="Redaction scores").click()
        page.wait_for_timeout(500)
        _assert_clean(page, "redaction scores")
        _shot(page, "12-redact-scores")
