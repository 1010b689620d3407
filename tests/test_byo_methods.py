"""Influence, GOLD and I2I unlearning with the user's own images, held-out images and judge (`--data`,
`--heldout`, `--judge`), like redaction and taming: each verb runs on a user's model and image folder, records
what it ran on, and a doomed command fails before any run exists, naming the missing piece as a flag.

The user's models are the examples' factories (`examples.dcgan:build`, the usual DCGAN with z as N x nz x 1 x 1;
`examples.i2i:build`; `examples.classifier:build` as judge) on 16x16 bar images in two class folders; GOLD, which
needs a conditional GAN, scores a folder of digits with the zoo's MNIST ACGAN."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from core.data import load
from core.runs import RunStore
from core.runs.verdict import verdict_of
from test_byo_redact import _one_thread, write_bars  # noqa: F401 - _one_thread is an autouse fixture

JUDGE = "examples.classifier:build"  # a factory the user names on the command line: it is called, untrained


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Training bars (40 per class), held-out bars (10 per class, another seed), digits 0-2 in class folders and a
    flat folder of digits (no labels)."""
    root = tmp_path_factory.mktemp("byo-methods")
    write_bars(root / "bars", per_class=40)
    write_bars(root / "held", per_class=10, seed=1)
    mnist = load("mnist", "train")
    (root / "flat").mkdir()
    for k in range(3):
        (root / "digits" / str(k)).mkdir(parents=True)
        for i, x in enumerate(mnist.x[mnist.labels == k][:20]):
            image = Image.fromarray((x[0].numpy() * 255).astype(np.uint8))
            image.save(root / "digits" / str(k) / f"{i}.png")
            image.save(root / "flat" / f"{k}-{i}.png")
    return {name: str(root / name) for name in ("bars", "held", "digits", "flat")}


def _cli(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_influence_ranks_the_users_images_by_fid_on_the_users_judge(folders, capsys, tmp_path):
    code, out = _cli(capsys, "influence", "examples.dcgan:build", "--data", folders["bars"], "--heldout",
                     folders["held"], "--judge", JUDGE, "--metric", "fid", "--trace-epochs", "1", "--latents", "40",
                     "--batch-size", "16", "--runs-dir", str(tmp_path))
    assert code == 0 and out["status"] == "succeeded", out
    assert out["metric_name"] == "FID[my-judge]"
    run = RunStore(tmp_path).get(out["run"])
    assert {k: run.config["params"][k] for k in ("data", "heldout", "judge")} == {
        "data": folders["bars"], "heldout": folders["held"], "judge": JUDGE}
    ranking = json.loads(json.dumps(out["most_harmful_ids"]))
    assert len(ranking) == 10 and set(ranking) <= set(range(80))  # ids of the user's 80 training images
    verdict = verdict_of(run)
    assert verdict.request == "rank the training instances of examples.dcgan:build by influence on FID[my-judge]"
    assert "not verified yet" in verdict.reading


def test_unlearn_forgets_a_class_of_the_users_folder_measured_on_the_users_held_out_images(folders, capsys, tmp_path):
    code, out = _cli(capsys, "unlearn", "examples.i2i:build", "--data", folders["bars"], "--heldout", folders["held"],
                     "--judge", JUDGE, "--forget", "label=0", "--epochs", "1", "--eval-size", "10",
                     "--runs-dir", str(tmp_path))
    assert code == 0 and out["status"] == "succeeded", out
    assert out["forget_images"] == 40 and out["retain_images"] == 40
    assert "fid_forget[center]" in out and "before:fid_forget[center]" in out
    run = RunStore(tmp_path).get(out["run"])
    assert run.config["params"]["heldout"] == folders["held"]
    verdict = verdict_of(run)
    assert verdict.request.startswith("unlearn label 0 from examples.i2i:build")
    assert verdict.headline.name == "forget FID [center]" and verdict.proof.kind == "bars"
    assert any(folders["held"] in note and JUDGE in note for note in verdict.notes)


def test_gold_scores_the_users_labelled_images_with_the_gans_discriminator(folders, capsys, tmp_path):
    code, out = _cli(capsys, "gold", "mnist-acgan", "score", "--on", "real", "--data", folders["digits"],
                     "--out", str(tmp_path / "scores.csv"), "--runs-dir", str(tmp_path))
    assert code == 0 and out["status"] == "succeeded", out
    assert out["n"] == 60  # every image of the user's three class folders
    assert RunStore(tmp_path).get(out["run"]).config["params"]["data"] == folders["digits"]
    assert verdict_of(RunStore(tmp_path).get(out["run"])).request == "score 60 real samples of mnist-acgan with GOLD"


DOOMED = {
    "influence without data": (["influence", "examples.dcgan:build"], "names no training dataset", "--data"),
    "influence without held-out images": (["influence", "examples.dcgan:build", "--data", "{bars}", "--metric",
                                           "dloss"],
                                          "on held-out images", "--heldout"),
    "influence FID without a judge": (["influence", "examples.dcgan:build", "--data", "{bars}", "--heldout", "{held}",
                                       "--metric", "fid"], "needs a label classifier as judge for FID", "--judge"),
    "influence with a judge of another shape": (["influence", "examples.dcgan:build", "--data", "{bars}", "--heldout",
                                                 "{held}", "--metric", "fid", "--judge", "mnist-lenet"],
                                                "reads 1x28x28 images but the model makes 1x16x16", "--judge"),
    "influence follow-up with new data": (["influence", "examples.dcgan:build", "--of-run", "x", "--data", "{bars}"],
                                          "--of-run checks a finished estimate", "--data"),
    "unlearn without held-out images": (["unlearn", "examples.i2i:build", "--data", "{bars}", "--forget", "label=0"],
                                        "on held-out images", "--heldout"),
    "unlearn held-out images without data": (["unlearn", "examples.i2i:build", "--heldout", "{held}", "--forget",
                                              "label=0"], "without the training images", "--data"),
    "unlearn without a judge": (["unlearn", "examples.i2i:build", "--data", "{bars}", "--heldout", "{held}",
                                 "--forget", "label=0"], "needs a label classifier or an identity embedding",
                                "--judge"),
    "gold reweight without held-out images": (["gold", "mnist-acgan", "reweight", "--data", "{digits}"],
                                              "fitting capacity", "--heldout"),
    "gold reweight on fewer images than a minibatch": (["gold", "mnist-acgan", "reweight", "--data", "{digits}",
                                                        "--heldout", "{digits}"], "no training step would run",
                                                       "labelled training images"),
    "gold on images without classes": (["gold", "mnist-acgan", "score", "--on", "real", "--data", "{flat}",
                                        "--out", "x.csv"], "needs the class of every real image", "sub-folder"),
    "gold with a judge": (["gold", "mnist-acgan", "sample", "--judge", "mnist-lenet", "--out", "x.png"],
                          "GOLD uses no judge", "--judge"),
}


@pytest.mark.parametrize("case", list(DOOMED))
def test_a_doomed_command_fails_before_any_run_naming_the_missing_piece(case, folders, capsys, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message, flag = DOOMED[case]
    code, out = _cli(capsys, *(a.format(**folders) for a in argv), "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and message in out["error"], out
    assert flag in out["error"] + out["hint"]
    assert not RunStore(tmp_path / "runs").ids()


def test_the_unlearn_page_runs_on_the_sidebars_data_held_out_images_and_judge(folders, monkeypatch, tmp_path):
    from app_harness import app_test_factory, assert_clean
    from core.models import save_bundle
    from core.runs import shared_runner
    from examples import i2i

    monkeypatch.setenv("LETHE_TRUST_FACTORIES", "examples.i2i")
    save_bundle(i2i.build(), tmp_path / "my-i2i")
    at = app_test_factory(monkeypatch)().run()
    at.radio(key="pick_source").set_value("Folder").run()
    at.text_input(key="pick_path").set_value(str(tmp_path / "my-i2i")).run()
    at.text_input(key="pick_data").set_value(folders["bars"])
    at.text_input(key="pick_heldout").set_value(folders["held"])
    at.text_input(key="pick_judge").set_value(JUDGE).run()
    at.switch_page("pages/unlearn.py").run()
    assert_clean(at)
    at.number_input(key="unlearn_epochs").set_value(1)
    at.number_input(key="unlearn_eval_size").set_value(10).run()
    command = at.code[0].value
    assert f"--data {folders['bars']} --heldout {folders['held']} --judge {JUDGE}" in command
    at.button(key="unlearn_start").click().run()
    assert_clean(at)
    run = shared_runner().wait(at.session_state["unlearn_run"], timeout=600)
    assert run.status == "succeeded", run.error
    assert run.config["params"]["heldout"] == folders["held"] and run.metrics["forget_images"] == 40
    at.run()
    assert_clean(at)
    assert any(m.value.startswith("##### Verdict: unlearn label 0 from my-i2i") for m in at.markdown)


def test_the_pages_commands_carry_the_users_data_held_out_images_and_judge():
    import shlex

    from core.cli import build_parser
    from core.methods.gold import gold_command
    from core.methods.influence import InfluenceConfig, TraceConfig, influence_command
    from core.methods.unlearning import UnlearnConfig, config_from, unlearning_command

    def parsed(command: str):
        words = shlex.split(command)
        assert words[:3] == ["python", "-m", "core"]
        return build_parser().parse_args(words[3:])

    config = UnlearnConfig(epochs=2, alpha=0.5, noise="image")
    args = parsed(unlearning_command("my i2i/", "label=0", config, "limited:5", 10, 3, data="/d x", judge="j",
                                     heldout="/h"))
    assert (args.model, args.data, args.heldout, args.judge) == ("my i2i/", "/d x", "/h", "j")
    assert (args.retain, args.eval_size, args.seed, config_from(args)) == ("limited:5", 10, 3, config)
    args = parsed(influence_command("g/", InfluenceConfig(metric="fid", trace=TraceConfig(epochs=2, batch_size=8)),
                                    1, data="/d", judge="j", heldout="/h"))
    assert (args.metric, args.trace_epochs, args.batch_size, args.data, args.heldout, args.judge) == (
        "fid", 2, 8, "/d", "/h", "j")
    args = parsed(gold_command("mnist-acgan", "reweight", ["--epochs", "4"], 0, "/d", "/h"))
    assert (args.action, args.epochs, args.data, args.heldout, args.judge) == ("reweight", 4, "/d", "/h", None)
