"""End to end: a person makes mnist-i2i forget a digit in the real app (headless Chromium): they pick the model,
choose the digit and a limited retain set, shorten the run, start it, and read the result (the same held-out masks
through the original and the unlearned model, the methods table, the download). Screenshots go to
artifacts/screenshots/ (the same server and helpers as test_e2e_app)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_e2e_app import (CHROMIUM, _assert_clean, _goto, _pick, _shot, _wait_idle, app_url, browser,  # noqa: F401
                          set_number)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (`make test` installs it)"),
]


def test_a_person_unlearns_a_digit_and_reads_the_result(app_url, tmp_path):  # noqa: F811 - the fixture
    with browser(tmp_path) as (context, page):
        page.goto(app_url)
        _wait_idle(page)
        _pick(page, "Zoo model", "mnist-i2i · i2i")
        _goto(page, "Unlearn")
        page.get_by_role("heading", name="Unlearn an image-to-image model").wait_for(timeout=180_000)
        _assert_clean(page, "unlearn setup")
        page.get_by_text("Limited (K per class)").click()
        _wait_idle(page)
        set_number(page, "K per class", 2)
        page.get_by_text("α and the optimiser").click()
        set_number(page, "Epochs", 1)
        set_number(page, "Batch (per set)", 32)
        set_number(page, "Held-out images per set", 16)
        _shot(page, "20-unlearn-setup")
        page.get_by_role("button", name="Start unlearning").click()
        page.get_by_role("button", name="Download the unlearned model (.zip)").wait_for(timeout=600_000)
        _wait_idle(page)
        _assert_clean(page, "unlearn finished")
        assert page.locator('[data-testid="stImage"]').count() >= 2  # retain and forget grids
        table = page.locator('[data-testid="stDataFrame"]').last
        table.scroll_into_view_if_needed()
        assert page.get_by_text("Every method run on this request").count() == 1
        _shot(page, "21-unlearn-finished")
