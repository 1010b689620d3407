"""The Unlearn page driven through AppTest: pick an I2I model, choose what to forget and the retain source, run
unlearning in the background, read the before/after grids, the methods table and the download; a model that is not
image-to-image and a proxy set that overlaps the forget set end in a message, never a traceback; a proxy of other
digits adds the kept digits it never showed to the table."""

from __future__ import annotations

import pytest

from app_harness import app_test_factory, assert_clean, pick_zoo
from core.runs import shared_runner


@pytest.fixture
def app_test(monkeypatch):
    return app_test_factory(monkeypatch)


def _page(app_test, model: str):
    at = pick_zoo(app_test().run(), model)
    return at.switch_page("pages/unlearn.py").run()


def test_a_model_that_is_not_image_to_image_gets_a_notice_and_a_way_to_pick_one(app_test):
    at = _page(app_test, "mnist-dcgan")
    assert_clean(at)
    assert any("image-to-image" in i.value for i in at.info)
    at.button(key="unlearn_use_mnist-i2i").click().run()
    assert_clean(at)
    assert at.session_state["model_spec"] == "mnist-i2i"
    assert at.button(key="unlearn_start")


def test_unlearning_a_digit_runs_in_the_background_and_shows_grids_table_and_download(app_test):
    at = _page(app_test, "mnist-i2i")
    assert_clean(at)
    at.multiselect(key="unlearn_labels").set_value([3])
    at.radio(key="unlearn_retain").set_value("limited").run()
    at.number_input(key="unlearn_k").set_value(2)
    at.number_input(key="unlearn_epochs").set_value(1)
    at.number_input(key="unlearn_batch").set_value(32)
    at.number_input(key="unlearn_eval_size").set_value(16).run()
    at.button(key="unlearn_start").click().run()
    assert_clean(at)
    run_id = at.session_state["unlearn_run"]
    record = shared_runner().wait(run_id, timeout=400)
    assert record.status == "succeeded", record.error
    assert record.config["params"]["forget"] == "label=3" and record.config["params"]["retain"] == "limited:2"
    at.run()
    assert_clean(at)
    assert len(at.get("image")) >= 2  # the retain and the forget grid
    assert any("Every method run on this request" in m.value for m in at.markdown)
    table = at.dataframe[-1].value
    assert list(table["model"])[0] == "Original model" and "Ours" in list(table["model"])[1]
    assert table.loc[0, "FID F"] == pytest.approx(record.metrics["before:fid_forget[center]"], abs=1e-3)
    labels = [d.proto.label for d in at.get("download_button")]
    assert "Download the unlearned model (.zip)" in labels


def test_a_proxy_set_that_overlaps_the_forget_set_is_refused_with_a_message(app_test):
    at = _page(app_test, "mnist-i2i")
    at.multiselect(key="unlearn_labels").set_value([3])
    at.radio(key="unlearn_retain").set_value("proxy").run()
    at.text_input(key="unlearn_proxy").set_value("label=3").run()
    at.button(key="unlearn_start").click().run()
    assert_clean(at)
    assert any("overlaps the forget set" in e.value for e in at.error)
    assert "unlearn_run" not in at.session_state


def test_a_proxy_of_other_digits_also_shows_the_kept_digits_it_never_showed(app_test):
    at = _page(app_test, "mnist-i2i")
    at.multiselect(key="unlearn_labels").set_value([3])
    at.radio(key="unlearn_retain").set_value("proxy").run()
    at.text_input(key="unlearn_proxy").set_value("label=5-9")
    at.number_input(key="unlearn_epochs").set_value(1)
    at.number_input(key="unlearn_eval_size").set_value(200).run()
    at.button(key="unlearn_start").click().run()
    assert_clean(at)
    record = shared_runner().wait(at.session_state["unlearn_run"], timeout=400)
    assert record.status == "succeeded", record.error
    at.run()
    assert_clean(at)
    assert any("U the kept classes the proxy never showed" in m.value for m in at.markdown)
    table = at.dataframe[-1].value
    assert table.loc[0, "FID U"] == pytest.approx(record.metrics["before:fid_unseen[center]"], abs=1e-3)
    assert table.loc[1, "FID U"] == pytest.approx(record.metrics["fid_unseen[center]"], abs=1e-3)
