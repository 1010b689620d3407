"""The GOLD page driven through AppTest: a model GOLD cannot read gets a notice and a way to pick one; on the toy
cGAN the histograms, the score scatter and rejection sampling show; on mnist-acgan the sorted grids and the real
images the model fits worst, which tick into the forget set; active learning runs in the background with the
page's lambda_c and validation size, and a validation set that leaves no test image is refused before it starts."""

from __future__ import annotations

import pandas as pd
import pytest

from app_harness import app_test_factory, assert_clean, pick_zoo
from core.methods.gold import ActiveConfig, real_data
from core.models import load_model
from core.runs import RunStore, shared_runner


@pytest.fixture
def app_test(monkeypatch):
    return app_test_factory(monkeypatch)


def _gold_page(app_test, model: str):
    at = pick_zoo(app_test().run(), model)
    return at.switch_page("pages/gold.py").run()


def test_an_unconditional_gan_gets_a_notice_and_the_conditional_gans_to_pick(app_test):
    at = _gold_page(app_test, "toy-gan")
    assert_clean(at)
    assert any("unconditional" in i.value for i in at.info)
    at.button(key="gold_use_toy-acgan").click().run()
    assert_clean(at)
    assert at.session_state["model_spec"] == "toy-acgan"
    assert any(c.key == "gold_hist" for c in at.get("plotly_chart"))


def test_toy_cgan_shows_both_terms_and_draws_with_rejection(app_test):
    at = _gold_page(app_test, "toy-acgan")
    assert_clean(at)
    keys = {c.key for c in at.get("plotly_chart")}
    assert {"gold_hist", "gold_scatter"} <= keys
    at.number_input(key="gold_burn_in").set_value(1000)
    at.slider(key="gold_p").set_value(0.5)
    at.button(key="gold_reject").click().run()
    assert_clean(at)
    rate = next(m for m in at.metric if m.label == "acceptance rate")
    assert 0 < float(rate.value.rstrip("%")) < 100
    assert len(at.session_state["gold_rejection"].x) == 256


def test_mnist_real_images_fitted_worst_tick_into_the_forget_set(app_test):
    at = pick_zoo(app_test().run(), "mnist-acgan")
    at = at.switch_page("pages/gold.py").run()
    at.number_input(key="gold_n").set_value(500).run()
    at.number_input(key="gold_n_real").set_value(500).run()
    assert_clean(at)
    assert len(at.get("imgs")) >= 2 or at.image, "sorted grids of generated samples"
    boxes = [c for c in at.checkbox if c.key.startswith("pick::mnist::")]
    assert boxes, "the worst-fitted real images are shown with a checkbox each"
    boxes[0].check().run()
    assert_clean(at)
    sample_id = int(boxes[0].key.split("::")[-1])
    assert sample_id in at.session_state["forget::mnist"]


def _smallest_active_run(at):
    at.number_input(key="gold_al_epochs").set_value(1)
    at.number_input(key="gold_al_pool").set_value(200)
    at.number_input(key="gold_al_fc_n").set_value(200)
    at.text_input(key="gold_al_schedule").set_value("4,2,6")
    return at


def _finished_active_run(at):
    """Start the active-learning run as set on the page and wait for it to succeed."""
    at.button(key="gold_al_start").click().run()
    assert_clean(at)
    record = shared_runner().wait(at.session_state["gold_al_run"], timeout=300)
    assert record.status == "succeeded", record.error
    return record


def test_active_learning_runs_in_the_background_and_shows_each_rounds_queries(app_test):
    at = _smallest_active_run(_gold_page(app_test, "toy-acgan")).run()
    record = _finished_active_run(at)
    assert record.metrics["labelled_gold"] == record.metrics["labelled_random"] == 6
    at.run()
    assert_clean(at)
    keys = {c.key for c in at.get("plotly_chart")}
    assert {"gold_pool_pool_gold", "gold_pool_pool_random"} <= keys
    table = next(d.value for d in at.dataframe if "labelled" in d.value.columns)  # per round, both strategies
    assert table["labelled"].tolist() == [4, 6]  # the schedule 4,2,6
    assert {"fitting capacity % (gold)", "fitting capacity % (random)", "epoch used (gold)"} <= set(table.columns)


def test_active_learning_trains_with_the_pages_lambda_c_and_picks_epochs_on_its_validation_images(app_test):
    at = _gold_page(app_test, "toy-acgan")
    assert at.number_input(key="gold_al_lambda_c").value == ActiveConfig.for_dataset("clusters6").lambda_c == 0.1
    assert at.number_input(key="gold_al_val_size").value == 0
    at = _smallest_active_run(at)
    at.number_input(key="gold_al_lambda_c").set_value(0.0)
    at.number_input(key="gold_al_val_size").set_value(50).run()
    record = _finished_active_run(at)
    assert record.config["params"]["lambda_c"] == 0.0
    assert record.config["params"]["val_size"] == 50
    history = pd.read_csv(record.path / "figures" / "history.csv")
    assert history["val_fitting_capacity"].notna().all(), "every round's epoch was chosen on the validation images"
    assert (history["best_epoch"] == 1).all()


def test_a_validation_set_that_leaves_no_test_image_is_refused_before_a_run_starts(app_test):
    held_out = len(real_data(load_model("toy-acgan"), "test"))
    at = _smallest_active_run(_gold_page(app_test, "toy-acgan"))
    at.number_input(key="gold_al_val_size").set_value(held_out).run()
    at.button(key="gold_al_start").click().run()
    assert_clean(at)
    assert any(f"the validation set takes {held_out} held-out images" in e.value for e in at.error)
    assert "gold_al_run" not in at.session_state
    assert RunStore().ids() == []
