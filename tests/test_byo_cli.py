"""`python -m core show`, errors as JSON, and the checks every verb makes before loading data or sampling: what a
user sees when they bring their own model to the command line."""

from __future__ import annotations

import json

import pytest

from core.cli import main
from core.errors import LetheError
from core.methods.redaction import judge_kinds, preflight
from core.models import load_model
from core.models.judge import load_judge
from core.overview import model_overview
from examples import dcgan


def _cli(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def _verb(overview: dict, name: str) -> dict:
    return next(v for v in overview["verbs"] if v["verb"] == name)


def test_show_a_zoo_gan_lists_its_networks_shape_range_judges_and_verbs(capsys):
    code, shown, _ = _cli(capsys, "show", "mnist-dcgan", "--json")
    assert code == 0
    assert shown["family"] == "gan" and shown["data_shape"] == [1, 28, 28] and shown["pixel_range"] == [-1.0, 1.0]
    assert shown["networks"]["generator"] and shown["networks"]["discriminator"]
    assert shown["dataset"] == "mnist" and shown["judges"] == {"labels": "mnist-lenet"}
    assert _verb(shown, "redact")["applies"] and _verb(shown, "sample")["applies"]
    assert _verb(shown, "tame") == {"verb": "tame", "applies": False, "note": "",
                                    "why_not": ["it works on flow models and this is a gan"]}


def test_show_prints_a_readable_summary_without_json(capsys):
    assert main(["show", "synthfaces-flow"]) == 0
    out = capsys.readouterr().out
    assert "data shape 3x32x32" in out and "yes tame" in out
    assert "no  redact   it works on gan models and this is a flow" in out


def test_show_says_why_redaction_does_not_apply_to_a_gan_without_d_or_data():
    gan = dcgan.build()
    gan.discriminator = None
    shown = model_overview(gan, "examples.dcgan:build")
    assert shown["networks"]["discriminator"] is False and shown["networks"]["latent_shape"] == [32, 1, 1]
    why = _verb(shown, "redact")["why_not"]
    assert any("no discriminator" in w for w in why)
    assert any("pass --data" in w for w in why)  # the card names no training data


def test_a_doomed_redaction_fails_naming_the_missing_piece_with_a_flag_hint():
    gan = dcgan.build()
    gan.discriminator = None
    with pytest.raises(LetheError) as info:
        preflight(gan, "label=0", data=None)
    assert "no discriminator" in info.value.message and "card names no training dataset" in info.value.message
    assert "python -m core show" in info.value.hint


def test_judge_kinds_are_read_from_the_forget_spec_alone():
    assert judge_kinds("label=0 + attr=hat") == ["labels", "attributes"]
    assert judge_kinds("ambiguity") == ["labels"]
    assert judge_kinds("ids=1-5 + boundary=1 + saved=mine") == []


def test_a_judge_must_be_a_classifier_of_the_models_shape():
    with pytest.raises(LetheError, match="is a gan model, not a classifier"):
        load_judge("mnist-dcgan", "cpu", (1, 28, 28))
    with pytest.raises(LetheError, match="reads 1x28x28 images but the model makes 3x32x32"):
        load_judge("mnist-lenet", "cpu", (3, 32, 32))
    assert load_judge("mnist-lenet", "cpu", (1, 28, 28)).kind == "labels"


def test_redact_with_a_wrong_judge_exits_2_before_any_run(capsys, tmp_path):
    code, out, err = _cli(capsys, "redact", "mnist-dcgan", "--judge", "synthfaces-attributes", "--forget", "label=0",
                          "--json")
    assert code == 2 and "reads 3x32x32 images but the model makes 1x28x28" in out["error"]
    assert out["hint"].startswith("Pass a --judge") and err.startswith("error: ")


def test_redact_without_a_label_judge_on_the_users_data_says_which_flag(capsys, tmp_path):
    code, out, _ = _cli(capsys, "redact", "mnist-dcgan", "--data", str(tmp_path), "--forget", "label=3", "--json")
    assert code == 2 and "needs a label classifier as judge" in out["error"]
    assert "--judge SPEC" in out["hint"]


def test_the_dcgan_example_loads_from_its_factory_spec():
    gan = load_model("examples.dcgan:build", "cpu")
    x, _ = gan.sample(4, seed=0)
    assert x.shape == (4, 1, 16, 16) and float(x.min()) >= 0 and float(x.max()) <= 1
