"""The Influence page driven through AppTest: a model that is not a GAN gets a way to pick one; on the paper's 2-D
FCGAN an estimate runs in the background and shows the sign rule, the map of influence, the ranking and its
distribution; its most harmful instances go to the forget set in one click; the finished run is verified and
cleansed later from the trace it kept."""

from __future__ import annotations

import pytest

from app_harness import app_test_factory, assert_clean, pick_zoo
from core.methods.influence import sign_rule
from core.runs import shared_runner

WAIT = 600


@pytest.fixture
def app_test(monkeypatch):
    return app_test_factory(monkeypatch)


def _influence_page(app_test, model: str):
    at = pick_zoo(app_test().run(), model)
    return at.switch_page("pages/influence.py").run()


def _charts(at) -> set[str]:
    return {c.key for c in at.get("plotly_chart")}


def test_a_model_that_is_not_a_gan_gets_a_notice_and_a_way_to_pick_one(app_test):
    at = _influence_page(app_test, "toy-flow")
    assert_clean(at)
    assert any("Influence works on GANs" in i.value for i in at.info)
    at.button(key="influence_use_influence-fcgan").click().run()
    assert_clean(at)
    assert at.session_state["model_spec"] == "influence-fcgan"
    assert at.button(key="influence_start")


def test_an_estimate_runs_in_the_background_then_is_ranked_forgotten_verified_and_cleansed(app_test):
    at = _influence_page(app_test, "influence-fcgan")
    assert_clean(at)
    assert at.selectbox(key="influence_metric").options == ["ALL (average log-likelihood, 2-D data)",
                                                            "Discriminator loss (the paper's baseline)"]
    at.number_input(key="influence_latents").set_value(200).run()
    at.button(key="influence_start").click().run()
    assert_clean(at)
    run_id = at.session_state["influence_run"]
    record = shared_runner().wait(run_id, timeout=WAIT)
    assert record.status == "succeeded", record.error
    at.run()
    assert_clean(at)
    assert any(sign_rule("all") in i.value for i in at.info)  # which sign hurts, in words
    assert {f"influence_map_{run_id}", f"influence_hist_{run_id}"} <= _charts(at)
    ranking = at.dataframe[0].value
    assert len(ranking) == 10_000 and ranking["harm"].is_monotonic_decreasing

    at.number_input(key="influence_top_n").set_value(15)
    at.button(key="influence_forget_top").click().run()
    assert_clean(at)
    assert at.session_state["forget::gaussian2d"] == set(ranking["id"].head(15).tolist())

    at.number_input(key="influence_targets").set_value(6)
    at.button(key="influence_verify").click().run()
    check = shared_runner().wait(at.session_state["influence_check"], timeout=WAIT)
    assert check.status == "succeeded", check.error
    at.run()
    assert_clean(at)
    # the check's verdict card holds tau and the estimated-vs-true scatter; the panel below does not repeat them
    assert any(m.label.startswith("Kendall") for m in at.metric)
    assert f"influence_check_proof_{check.id}" in _charts(at) and f"influence_scatter_{check.id}" not in _charts(at)

    at.number_input(key="influence_n_h").set_value(200)
    at.multiselect(key="influence_baselines").set_value(["random"])
    at.button(key="influence_cleanse").click().run()
    check = shared_runner().wait(at.session_state["influence_check"], timeout=WAIT)
    assert check.status == "succeeded", check.error
    at.run()
    assert_clean(at)
    assert f"influence_check_proof_{check.id}" in _charts(at)  # the verdict card's proof: the metric per selector
    assert {"test_all_after[influence]", "test_all_after[random]"} <= set(check.metrics)
