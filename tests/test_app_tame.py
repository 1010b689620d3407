"""The Tame page driven through AppTest: pick a flow, choose what to forget, start a background taming run, watch
it, read the result (Table 1 quantiles, NLL histograms, the toy's density), download the tamed model, compare
runs; a non-flow model and a bad setting end in a message, never a traceback."""

from __future__ import annotations

import pytest

from app_harness import app_test_factory, assert_clean, pick_zoo
from core.runs import shared_runner


@pytest.fixture
def app_test(monkeypatch):
    return app_test_factory(monkeypatch)


def _tame_page(app_test, model: str):
    at = pick_zoo(app_test().run(), model)
    return at.switch_page("pages/tame.py").run()


def test_a_model_that_is_not_a_flow_gets_a_notice_and_a_way_to_pick_a_flow(app_test):
    at = _tame_page(app_test, "toy-gan")
    assert_clean(at)
    assert any("normalizing flows" in i.value for i in at.info)
    at.button(key="tame_use_toy-flow").click().run()
    assert_clean(at)
    assert at.session_state["model_spec"] == "toy-flow"
    assert at.button(key="tame_start")


def test_taming_the_toy_flow_runs_in_the_background_and_shows_its_results(app_test):
    at = _tame_page(app_test, "toy-flow")
    assert_clean(at)
    at.segmented_control(key="tame_kind").set_value("Label").run()
    at.selectbox(key="tame_label").set_value(0)
    at.number_input(key="tame_max_it").set_value(8)
    at.number_input(key="tame_lr").set_value(0.001).run()
    at.button(key="tame_start").click().run()
    assert_clean(at)
    run_id = at.session_state["tame_run"]
    record = shared_runner().wait(run_id, timeout=240)
    assert record.status == "succeeded", record.error
    at.run()
    assert_clean(at)
    assert record.metrics["iterations"] == 8
    table = at.dataframe[0].value  # Table 1's view: q before / after and QD per set
    assert {"D_F", "D'_F", "D_R"} <= set(table["set"])
    assert any(c.key == f"tame_hist_{run_id}" for c in at.get("plotly_chart"))
    assert any(c.key == f"tame_toy_{run_id}" for c in at.get("plotly_chart"))
    labels = [d.proto.label for d in at.get("download_button")]
    assert "Download the tamed model (.zip)" in labels
    compared = at.dataframe[-1].value  # rows named by what was forgotten and how, ending in the id's tail
    assert any(row.startswith("label 0 · forget") and row.endswith(run_id[-6:]) for row in compared["run"])
    assert any(c.key == f"tame_verdict_{run_id}" for c in at.get("flex_container") + at.get("vertical"))
    assert any("Verdict: forget label 0 in toy-flow" in m.value for m in at.markdown)


def test_a_bad_remember_set_fails_the_run_with_its_message(app_test):
    at = _tame_page(app_test, "toy-flow")
    at.segmented_control(key="tame_kind").set_value("Label").run()
    at.text_input(key="tame_remember").input("yesterday").run()
    at.button(key="tame_start").click().run()
    run_id = at.session_state["tame_run"]
    assert shared_runner().wait(run_id, timeout=120).status == "failed"
    at.run()
    assert_clean(at)
    assert any("unknown remember set" in e.value for e in at.error)


def test_picked_images_without_a_pick_point_to_the_data_page(app_test):
    at = _tame_page(app_test, "toy-flow")
    at.segmented_control(key="tame_kind").set_value("Picked images").run()
    assert_clean(at)
    assert any("No images picked" in w.value for w in at.warning)
    assert at.button(key="tame_start").disabled


def test_a_target_share_run_reports_the_share_it_reached(app_test):
    at = _tame_page(app_test, "toy-flow")
    at.segmented_control(key="tame_kind").set_value("Label").run()
    at.selectbox(key="tame_label").set_value(0)
    at.radio(key="tame_direction").set_value("target").run()
    at.slider(key="tame_target").set_value(0.1)
    at.number_input(key="tame_max_it").set_value(60)
    at.number_input(key="tame_lr").set_value(0.001).run()
    at.button(key="tame_start").click().run()
    run_id = at.session_state["tame_run"]
    record = shared_runner().wait(run_id, timeout=240)
    assert record.status == "succeeded", record.error
    assert record.metrics["direction"] == "forget" and record.metrics["target_share"] == 0.1
    at.run()
    assert_clean(at)
    assert any(m.label == "share" for m in at.metric)


def test_a_run_that_kept_a_best_share_model_offers_it_to_download_and_to_load(app_test):
    # The toy run of test_methods_taming whose lowest share comes before its last iteration, in the app's store.
    from core.methods.taming import TamingConfig, best_model_spec, job_params, prepare, taming_job
    from core.models.spec import load_model
    from core.runs import RunStore, run_now

    toy = load_model("toy-flow", "cpu")
    config = TamingConfig(max_iterations=120, stats_size=256, remember_batch=64, forget_batch=64, monitor_every=10,
                          monitor_samples=400, eval_samples=600, lr=1e-3)
    prepared = prepare(toy, "label=0", seed=0, eval_size=300)
    run = run_now(taming_job(toy, "label=0", config, prepared=prepared), method="tame", model="toy-flow",
                  params=job_params("label=0", config), store=RunStore())
    best = best_model_spec(run)
    assert run.status == "succeeded" and best is not None, run.error
    at = _tame_page(app_test, "toy-flow")
    at.session_state["tame_run"] = run.id
    at.run()
    assert_clean(at)
    assert any(m.value.startswith("**Best model by the share**: iteration "
                                  f"{run.metrics['best_share_iteration']} of 120") for m in at.markdown)
    assert any(f"Best model: iteration {run.metrics['best_share_iteration']}" in c.value for c in at.caption)
    assert "Download the best model (.zip)" in [d.proto.label for d in at.get("download_button")]
    at.button(key=f"tame_load_best_{run.id}").click().run()
    assert_clean(at)
    assert at.session_state["pick_source"] == "Folder" and at.session_state["model_spec"] == best
