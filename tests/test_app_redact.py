"""The Redact page, driven the way a person uses it: pick a GAN, pick what to redact, set the algorithm, run,
watch, compare with the deletion baseline, read the redaction scores, keep the model."""

from __future__ import annotations

import pytest

from app_harness import app_test_factory, assert_clean, pick_zoo
from core.data.selection import Selection, save_selection
from core.runs import RunStore, shared_runner


@pytest.fixture
def app_test(monkeypatch):
    return app_test_factory(monkeypatch)


def _redact_page(at):
    at.switch_page("pages/redact.py").run()
    assert_clean(at)
    return at


def test_defaults_describe_label_zero_with_the_papers_hyperparameters(app_test):
    at = _redact_page(pick_zoo(app_test().run(), "mnist-dcgan"))
    assert at.title[0].value == "Redact"
    assert at.number_input(key="redact_lam").value == pytest.approx(0.85)
    assert at.number_input(key="redact_alpha_pos").value == pytest.approx(0.95)
    assert at.number_input(key="redact_alpha_neg").value == pytest.approx(0.05)
    assert at.number_input(key="redact_epochs").value == 8
    assert any("400 of 4,000 training samples" in c.value for c in at.caption)  # the 400 zeros of the train split
    assert len(at.image) == 1  # pre-trained samples that are zeros
    command = at.code[0].value
    assert "redact mnist-dcgan --forget label=0 --algorithm data" in command
    at.segmented_control(key="redact_algorithm").set_value("classifier").run()
    assert_clean(at)
    assert "--algorithm classifier" in at.code[0].value


def test_several_sets_at_once_and_an_empty_choice(app_test):
    at = _redact_page(pick_zoo(app_test().run(), "mnist-dcgan"))
    at.pills(key="redact_kinds").set_value(["Labels", "Boundary artifacts"]).run()
    assert_clean(at)
    assert "label=0 + boundary=1" in at.code[0].value
    at.pills(key="redact_kinds").set_value([]).run()
    assert_clean(at)
    assert any("at least one set" in w.value for w in at.warning)


def test_a_conditional_gan_is_turned_away_with_a_pointer(app_test):
    at = _redact_page(pick_zoo(app_test().run(), "mnist-acgan"))
    assert any("unconditional" in i.value for i in at.info)


def test_run_watch_compare_and_keep_on_the_toy(app_test):
    """toy-gan on the 2-D Gaussian with a saved forget set: a redaction run and a deletion baseline, compared."""
    from core.data import load

    data = load("gaussian2d", "train")
    far = data.ids[data.x[:, 0] > 2.5].tolist()
    save_selection("far-right", Selection("gaussian2d", "train", ids=far))
    at = _redact_page(pick_zoo(app_test().run(), "toy-gan"))
    at.pills(key="redact_kinds").set_value(["Forget set"]).run()
    at.selectbox(key="redact_saved").select("far-right").run()
    at.number_input(key="redact_epochs").set_value(2)
    at.number_input(key="redact_eval").set_value(2000)
    at.number_input(key="redact_batch").set_value(100).run()
    assert_clean(at)
    assert "--forget saved=far-right" in at.code[0].value
    at.button(key="redact_start").click().run()
    assert_clean(at)
    runner = shared_runner()
    run_id = at.session_state["redact_run"]
    assert runner.wait(run_id, timeout=240).status == "succeeded"
    at.number_input(key="redact_deletion_epochs").set_value(1)
    at.button(key="redact_deletion").click().run()
    deletion_id = at.session_state["redact_run"]
    assert deletion_id != run_id and runner.wait(deletion_id, timeout=240).status == "succeeded"
    at.selectbox(key="redact_run").select(run_id).run()
    assert_clean(at)
    store = RunStore()
    redaction = store.get(run_id).metrics
    assert redaction["invalidity_after"] < redaction["invalidity_before"]
    assert len(at.get("plotly_chart")) >= 2  # the run's invalidity curve and the comparison chart
    compared = at.multiselect(key="redact_compare")
    assert len(compared.value) == 2  # both runs, so deletion shows as a dashed level beside the redaction curve
    assert at.get("download_button")  # keep the redacted model
    at.tabs  # noqa: B018 - the scores tab renders with the run (a scatter of X ∩ Ω's redaction scores)
    assert any("slope" in (chart.proto.spec or "") for chart in at.get("plotly_chart"))


def test_an_attribute_expression_on_the_face_gan(app_test):
    at = _redact_page(pick_zoo(app_test().run(), "synthfaces-dcgan"))
    assert at.pills(key="redact_kinds").value == ["Attribute expression"]  # no label classifier for faces
    assert at.text_input(key="redact_attr").value == "glasses & ~smile"
    assert any("training samples fall in Ω" in c.value for c in at.caption)
    assert "--forget 'attr=glasses & ~smile'" in at.code[0].value
    at.text_input(key="redact_attr").set_value("wings").run()
    assert any("unknown attribute" in e.value for e in at.error)  # a message, not a traceback
