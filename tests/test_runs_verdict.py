"""Verdicts: every finished run states the request in words, the headline before -> after with its uncertainty and
relative change, the quality cost, the time, one line of reading and the picture that proves it."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from core.runs import RunStore
from core.runs.verdict import Measure, reading, time_text, verdict_of
from core.runs.words import forget_words, model_words, run_words
from core.viz.verdict import proof_figure


def _finished(store: RunStore, method: str, model: str, params: dict, metrics: dict, figures: dict = ()) -> str:
    writer = store.create(method, model, params, 0, "cpu")
    for name, value in dict(figures).items():
        writer.save_figure(name, value)
    writer.save_metrics(metrics)
    writer.update_status(status="succeeded", started=time.time() - 30, finished=time.time())
    writer.close()
    return writer.id


REDACTION = {"invalidity_before": 0.098, "invalidity_before_se": 0.0094, "invalidity_after": 0.002,
             "invalidity_after_se": 0.0014, "eval_samples": 1000, "is_before": 7.70, "is_after": 7.0,
             "is_metric": "IS[mnist-lenet]", "fid_before": 43.6, "fid_after": 40.1, "fid_metric": "FID[mnist-lenet]",
             "seconds": 19.556563600000118, "omega_size": 401}


def test_a_label_redaction_reads_as_a_fall_in_invalidity_with_its_interval_and_quality_cost(tmp_path):
    store = RunStore(tmp_path)
    shares = pd.DataFrame({"class": [str(k) for k in range(10)], "before": [0.1] * 10,
                           "after": [0.01] + [0.11] * 9})
    run_id = _finished(store, "redact", "mnist-dcgan", {"forget": "label=0", "algorithm": "classifier"}, REDACTION,
                       {"class_shares": shares})
    v = verdict_of(store.get(run_id))
    assert v.request == "forget label 0 of mnist-dcgan"
    assert v.headline.name == "invalidity"
    assert v.headline.before == pytest.approx(0.098) and v.headline.after == pytest.approx(0.002)
    assert v.headline.after_pm == pytest.approx(1.96 * 0.0014, rel=1e-3)  # 95% from the binomial standard error
    assert v.headline.relative == pytest.approx(-0.98, abs=0.005)
    assert v.headline.improved is True
    assert v.reading.startswith("invalidity fell 98% (9.8% -> 0.2%)")
    assert "quality cost: IS[mnist-lenet] -0.70, FID[mnist-lenet] -3.50" in v.reading
    assert [q.name for q in v.quality] == ["IS[mnist-lenet]", "FID[mnist-lenet]"]
    assert any("without* Ω" in n for n in v.notes)  # why FID falls
    assert v.seconds == pytest.approx(19.5566, abs=1e-3)
    assert time_text(v.seconds) == "20 s"
    assert v.proof.kind == "shares" and v.proof.data["forgotten"] == ["0"]
    fig = proof_figure(v.proof)
    assert [t.name for t in fig.data][0] == "before" and fig.data[1].marker.color[0] != fig.data[1].marker.color[1]


def test_a_wilson_upper_bound_replaces_the_standard_error_when_the_run_recorded_one(tmp_path):
    store = RunStore(tmp_path)
    metrics = {**REDACTION, "invalidity_after": 0.0, "invalidity_after_se": 0.0, "invalidity_after_upper": 0.0038}
    v = verdict_of(store.get(_finished(store, "redact", "mnist-dcgan", {"forget": "label=0"}, metrics)))
    assert v.headline.after_pm == pytest.approx(0.0038)
    assert v.proof is None  # no class shares saved: no picture rather than a made-up one


def test_a_deletion_baseline_says_it_retrained(tmp_path):
    store = RunStore(tmp_path)
    run_id = _finished(store, "redact", "mnist-dcgan", {"forget": "label=0", "baseline": "deletion"}, REDACTION)
    assert verdict_of(store.get(run_id)).request == "retrain mnist-dcgan without label 0 (deletion baseline)"


def test_a_person_tamed_out_of_a_flow_reads_as_a_fall_in_their_likelihood_quantile(tmp_path):
    store = RunStore(tmp_path)
    nlls = {"unit": "bits/dim", "delta": 4.0, "direction": "forget",
            "stats": {"base": {"mu": 1.85, "sigma": 0.13}, "tamed": {"mu": 1.86, "sigma": 0.13}},
            "nll": {"base": {"reference": [1.8, 1.85, 1.9, 2.0], "forget": [1.7, 1.8, 1.9]},
                    "tamed": {"reference": [1.81, 1.86, 1.9, 2.0], "forget": [2.36, 2.38, 2.40]}}}
    metrics = {"q_forget_before": 0.62, "q_forget_after": 0.0001, "bpd_remember_before": 1.853,
               "bpd_remember_after": 1.858, "fid_before": 20.0, "fid_after": 20.5, "fid_judge": "FID[synthfaces-attr]",
               "iterations": 180, "stop_reason": "threshold", "direction": "forget", "seconds": 60.0,
               "seconds_total": 75.0}
    run_id = _finished(store, "tame", "synthfaces-flow", {"forget": "identity=17", "direction": "forget"}, metrics,
                       {"nlls": nlls})
    v = verdict_of(store.get(run_id))
    assert v.request == "forget person 17 in synthfaces-flow"
    assert v.headline.better == "lower" and v.headline.improved is True
    assert v.headline.before_pm is not None and v.headline.before_pm > 0  # spread of the three images' q
    assert "reached the threshold after 180 iterations" in v.reading
    assert "bits/dim on D_R +0.005" in v.reading
    assert v.seconds == 75.0
    assert v.proof.kind == "nll"
    fig = proof_figure(v.proof)
    assert {t.name for t in fig.data} >= {"remember images (D_R)", "forget images (D_F)"}


def test_a_target_share_run_is_judged_by_the_share(tmp_path):
    store = RunStore(tmp_path)
    metrics = {"share_before": 0.79, "share_after": 0.52, "share_samples": 2000, "share_attribute": "smile",
               "target_share": 0.5, "iterations": 60, "stop_reason": "target_share"}
    v = verdict_of(store.get(_finished(store, "tame", "synthfaces-flow",
                                       {"forget": "attr=smile", "target_share": 0.5}, metrics)))
    assert v.request == "bring the share of attribute 'smile' in samples of synthfaces-flow to 50%"
    assert v.headline.after_pm == pytest.approx(1.96 * (0.52 * 0.48 / 2000) ** 0.5, rel=1e-4)


def test_a_share_is_shown_with_the_datas_share_and_how_many_samples_the_judge_could_not_call(tmp_path):
    store = RunStore(tmp_path)
    metrics = {"share_before": 0.24, "share_after": 0.31, "share_samples": 2000, "share_attribute": "smile",
               "target_share": 0.5, "share_data": 0.426, "share_unsure_before": 0.81, "share_unsure_after": 0.78,
               "iterations": 800, "stop_reason": "max_iterations"}
    v = verdict_of(store.get(_finished(store, "tame", "synthfaces-flow",
                                       {"forget": "attr=smile", "target_share": 0.5}, metrics)))
    assert v.headline.note == "42.6% of the training data; judge unsure of 81% -> 78% of samples"


def test_runs_that_did_not_succeed_or_methods_without_a_verdict_get_none(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("redact", "mnist-dcgan", {"forget": "label=0"}, 0, "cpu")
    writer.update_status(status="failed", finished=time.time())
    writer.close()
    assert verdict_of(store.get(writer.id)) is None
    assert verdict_of(store.get(_finished(store, "zoo-train", "mnist-lenet", {}, {"accuracy": 0.9}))) is None


def test_measures_and_words_read_like_a_person_writes_them():
    m = Measure("IS", 7.70, 7.0, better="higher")
    assert m.change_text() == "-0.70 (-9%)" and m.improved is False
    assert Measure("invalidity", 0.1, None).change is None
    assert reading(None, [m]) == "quality cost: IS -0.70"
    assert time_text(200) == "3 min 20 s" and time_text(5.25) == "5.2 s"
    assert forget_words("label=0,3 + boundary=1") == "labels 0, 3 and boundary artifacts (1 px)"
    assert forget_words("ids=1-3,7") == "4 picked images"
    assert model_words("/x/runs/20261201-abc/model") == "the model of run 20261201-abc"
    assert run_words({"method": "tame", "params": {"forget": "identity=17", "ablation": "no-remember"}},
                     "20261201-1-tame-abcdef") == "person 17 · forget · no-remember · abcdef"
    json.dumps(forget_words("attr=glasses & ~smile"))


def test_an_edited_model_is_titled_as_such():
    from core.models.card import ModelCard
    from core.runs.words import model_title

    base = ModelCard(name="mnist-dcgan", family="gan", architecture="dcgan")
    assert model_title(base, "mnist-dcgan") == "mnist-dcgan"
    redacted = ModelCard(name="mnist-dcgan", family="gan", architecture="dcgan", parent="mnist-dcgan",
                         training={"method": "redaction"})
    assert model_title(redacted, "/r/runs/20261201-1-redact-abc/model") == \
        "mnist-dcgan (redacted, run 20261201-1-redact-abc)"
    tamed = ModelCard(name="synthfaces-flow-tamed", family="flow", architecture="glow", parent="synthfaces-flow",
                      training={"taming": {}})
    assert model_title(tamed, "x/model").startswith("synthfaces-flow (tamed")


def test_a_share_verdict_gives_the_share_among_the_samples_the_judge_is_sure_of_and_the_final_model_as_best(tmp_path):
    store = RunStore(tmp_path)
    metrics = {"share_before": 0.24, "share_after": 0.31, "share_samples": 1000, "share_attribute": "smile",
               "target_share": 0.5, "share_unsure_before": 0.81, "share_unsure_after": 0.78,
               "share_confident_before": 0.05, "share_confident_after": 0.12, "best_share_iteration": 300,
               "best_is_final": True, "iterations": 300, "stop_reason": "max_iterations"}
    v = verdict_of(store.get(_finished(store, "tame", "synthfaces-flow",
                                       {"forget": "attr=smile", "target_share": 0.5}, metrics)))
    assert v.headline.note == ("judge unsure of 81% -> 78% of samples; among the samples it is sure of "
                               "5.0% -> 12.0%")
    assert "Best model: the final one (its share, judged at iteration 300, was the run's best)." in v.notes
