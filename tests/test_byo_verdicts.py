"""Verdicts of the three newer methods: an influence, GOLD or unlearning run states its request in words, its
headline before -> after (with uncertainty where the run has it), its cost, a one-line reading and the picture that
proves it, like redaction and taming (tests/test_runs_verdict.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from core.runs import RunStore
from core.runs.verdict import verdict_of
from core.viz.verdict import proof_figure
from test_runs_verdict import _finished


UNLEARN = {"seconds": 42.0, "fid_forget[center]": 84.0, "before:fid_forget[center]": 20.0,
           "fid_retain[center]": 10.3, "before:fid_retain[center]": 10.0, "is_retain[center]": 8.9,
           "before:is_retain[center]": 9.0, "psnr_retain[center]": 17.9, "before:psnr_retain[center]": 18.0,
           "fid_forget[outpaint]": 60.0, "before:fid_forget[outpaint]": 30.0, "fid_retain[outpaint]": 15.0,
           "before:fid_retain[outpaint]": 14.0}


def test_unlearning_reads_as_forget_fid_up_k_times_while_retain_fid_barely_moves(tmp_path):
    store = RunStore(tmp_path)
    v = verdict_of(store.get(_finished(store, "unlearn", "mnist-i2i", {"forget": "label=0,1", "method": "ours",
                                                                        "retain": "train"}, UNLEARN)))
    assert v.request.startswith("unlearn labels 0, 1 from mnist-i2i (")
    assert v.headline.name == "forget FID [center]"
    assert (v.headline.before, v.headline.after, v.headline.improved) == (20.0, 84.0, True)
    assert [q.name for q in v.quality][0] == "retain FID [center]"
    assert "forget FID ×4.2 while retain FID +3%" in v.reading
    assert v.seconds == 42.0
    assert v.proof.kind == "bars"
    assert v.proof.data["categories"] == ["forget · center", "retain · center", "forget · outpaint",
                                          "retain · outpaint"]
    assert v.proof.data["series"]["unlearned"][0] == 84.0
    assert len(proof_figure(v.proof).data) == 2  # original and unlearned side by side


def test_unlearning_of_people_also_says_how_often_the_identity_judge_still_recognises_them(tmp_path):
    store = RunStore(tmp_path)
    metrics = {**UNLEARN, "recognised_forget[center]": 0.05, "before:recognised_forget[center]": 0.8,
               "recognised_noise_forget[center]": 0.04}
    v = verdict_of(store.get(_finished(store, "unlearn", "synthfaces-i2i", {"forget": "identity=0-9",
                                                                             "judge": "my.judge:build"}, metrics)))
    assert v.request.startswith("unlearn person 0-9 from synthfaces-i2i")
    assert any("80% -> 5%" in n and "4% from the unmasked context" in n for n in v.notes)
    assert any("the judge my.judge:build" in n for n in v.notes)


def test_unlearning_with_a_proxy_also_reads_the_kept_classes_the_proxy_never_showed(tmp_path):
    store = RunStore(tmp_path)
    metrics = {**UNLEARN, "fid_unseen[center]": 11.5, "before:fid_unseen[center]": 10.0}
    v = verdict_of(store.get(_finished(store, "unlearn", "mnist-i2i", {"forget": "label=0,1", "method": "ours",
                                                                        "retain": "proxy:label=5-9"}, metrics)))
    assert [q.name for q in v.quality][:2] == ["retain FID [center]",
                                               "retain FID [center], classes the proxy never showed"]
    assert "retain FID +3% (+15% on the classes the proxy never showed)" in v.reading
    assert "unseen · center" in v.proof.data["categories"]
    assert "unseen · outpaint" not in v.proof.data["categories"]


def test_gold_reweighting_reads_as_fitting_capacity_plain_against_reweighted_with_its_curves(tmp_path):
    store = RunStore(tmp_path)
    history = pd.DataFrame({"epoch": [1, 2, 2], "branch": ["both", "baseline", "gold"],
                            "gold_mean": [-1.0, -0.9, -0.7], "fitting_capacity": [0.5, 0.6, 0.66]})
    metrics = {"fitting_capacity_baseline": 0.6, "fitting_capacity_gold": 0.66, "gold_mean_baseline": -0.9,
               "gold_mean_gold": -0.7, "epoch_seconds_plain": 1.0, "epoch_seconds_gold": 1.5}
    v = verdict_of(store.get(_finished(store, "gold", "mnist-acgan", {"action": "reweight"}, metrics,
                                       {"history": history})))
    assert v.request == "re-weight the training of mnist-acgan's architecture with GOLD (eq. 5)"
    assert v.headline.before == 0.6 and v.headline.after == 0.66 and v.headline.percent
    assert v.reading.startswith("fitting capacity, plain -> GOLD re-weighted rose 10% (60.0% -> 66.0%)")
    assert any("1.50x a plain one" in n for n in v.notes)
    assert v.proof.kind == "curves" and set(v.proof.data["series"]) == {"shared first half", "plain",
                                                                        "GOLD re-weighted"}
    assert len(proof_figure(v.proof).data) == 3


def test_gold_sampling_reads_as_its_acceptance_rate_and_the_page_measurement_as_fitting_capacity(tmp_path):
    store = RunStore(tmp_path)
    sample = {"n": 64, "proposed": 640, "acceptance_rate": 0.1, "p": 0.1, "sampling_seconds": 2.0}
    v = verdict_of(store.get(_finished(store, "gold", "mnist-acgan", {"action": "sample"}, sample)))
    assert v.headline.after == 0.1 and v.headline.before is None
    assert "accepted 64 of 640 proposed (10.0%)" in v.reading and v.seconds == 2.0
    gain = {"acceptance_rate": 0.4, "p": 0.1, "n": 500, "fitting_capacity_baseline": 0.7,
            "fitting_capacity_gold": 0.75}
    v = verdict_of(store.get(_finished(store, "gold", "mnist-acgan", {"action": "rejection fitting capacity"}, gain)))
    assert v.headline.name == "fitting capacity, plain -> GOLD-accepted samples" and v.headline.after == 0.75
    assert v.proof.kind == "bars" and v.proof.data["series"]["fitting capacity"] == [0.7, 0.75]


def test_an_influence_estimate_alone_says_it_is_not_verified_and_names_the_most_harmful(tmp_path):
    store = RunStore(tmp_path)
    metrics = {"metric": "fid", "metric_name": "FID[mnist-lenet]", "metric_value": 40.0, "steps": 100,
               "trace_seconds": 10.0, "inference_seconds": 5.0, "inference_over_trace": 0.5,
               "most_harmful_ids": [7, 3, 9]}
    v = verdict_of(store.get(_finished(store, "influence", "mnist-dcgan", {"metric": "fid"}, metrics)))
    assert v.request == "rank the training instances of mnist-dcgan by influence on FID[mnist-lenet]"
    assert v.headline.after == 40.0 and v.headline.better == "lower"
    assert "not verified yet" in v.reading and v.seconds == 15.0
    assert any("7, 3, 9" in n for n in v.notes)


def test_a_checked_influence_estimate_reads_as_the_test_metric_after_cleansing_and_the_rank_agreement(tmp_path):
    store = RunStore(tmp_path)
    cleansing = pd.DataFrame({"selector": ["influence", "random"], "removed": [5, 5], "before": [2.0, 2.0],
                              "after": [2.2, 1.98], "improvement": [0.2, -0.02]})
    verification = pd.DataFrame({"instance": [1, 2, 3, 4], "estimated": [0.1, 0.2, 0.3, 0.4],
                                 "true": [0.1, 0.25, 0.28, 0.5]})
    metrics = {"of_run": "abc", "metric": "all", "metric_name": "ALL", "cleanse_n_h": 5, "test_all_before": 2.0,
               "test_all_after[influence]": 2.2, "test_all_after[random]": 1.98, "kendall_tau": 1.0,
               "jaccard": 0.5, "verified_targets": 4, "verify_seconds": 3.0, "cleanse_seconds": 4.0}
    v = verdict_of(store.get(_finished(store, "influence", "influence-fcgan", {"of_run": "abc"}, metrics,
                                       {"cleansing": cleansing, "verification": verification})))
    assert v.request == "check influence estimate abc of influence-fcgan on ALL"
    assert v.headline.name == "test ALL, removing 5 by influence" and v.headline.improved is True
    assert [q.name for q in v.quality] == ["test ALL, removing 5 at random", "Kendall τ, estimated vs true influence",
                                           "Jaccard of the critical instances"]
    assert v.quality[1].after_pm == pytest.approx(1.959964 * (2 * 13 / (9 * 4 * 3)) ** 0.5)  # tau's null 95% range
    assert "τ = 1.00 over 4 instances" in v.reading and v.seconds == 7.0
    assert v.proof.kind == "bars" and v.proof.data["categories"] == ["before removal", "by influence", "random"]
    assert len(proof_figure(v.proof).data) == 1
