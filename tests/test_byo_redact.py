"""Issue 11's "Done when": a DCGAN of the usual shape (G takes z as N x nz x 1 x 1, with its discriminator), trained
here on a few hundred images from a folder, is redacted from the command line and from the app, with that folder
as its data and a user classifier as its judge.

The images are 16x16 grey bars in two class folders, `horizontal/` and `vertical/`; the DCGAN and the judge are
`examples/dcgan.py` and `examples/classifier.py`, trained for a few seconds and saved as a user would save them
(`save_bundle`); redaction asks the GAN to stop generating label 0 (horizontal bars) for one epoch.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from app_harness import app_test_factory, assert_clean
from core.cli import main
from core.data import load
from core.models import save_bundle
from core.runs import RunStore, shared_runner
from examples import classifier, dcgan

TRUST = "examples.dcgan,examples.classifier"  # saved factory models are rebuilt only from trusted modules


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny nets run several times faster on one thread than on two threads of a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_bars(root, per_class: int = 100, size: int = 16, seed: int = 0) -> None:
    """`root/horizontal/*.png` and `root/vertical/*.png`: a 3-pixel bright bar at a random row or column."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(("horizontal", "vertical")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.zeros((size, size), np.float32)
            r = rng.integers(2, size - 3)
            if k == 0:
                img[r:r + 3, :] = 1
            else:
                img[:, r:r + 3] = 1
            img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1)
            Image.fromarray((img * 255).astype(np.uint8)).save(root / name / f"{i:03d}.png")


@pytest.fixture(scope="module")
def user_models(tmp_path_factory):
    """(image folder, saved DCGAN folder, saved judge folder), trained once for this file."""
    root = tmp_path_factory.mktemp("byo")
    images = root / "bars"
    write_bars(images)
    data = load(str(images), "train", shape=(1, 16, 16))
    gan = dcgan.train(dcgan.build(nz=16, ngf=16, ndf=16), data.x, epochs=15, lr=1e-3)
    judge = classifier.train(classifier.build(["horizontal", "vertical"]), data.x, data.labels, epochs=8)
    assert float((judge.predict(data.x) == data.labels).float().mean()) > 0.95
    save_bundle(gan, root / "my-dcgan")
    save_bundle(judge, root / "my-judge")
    return images, root / "my-dcgan", root / "my-judge"


def test_the_folder_reads_as_an_image_folder_with_labels(user_models):
    images, _, _ = user_models
    data = load(str(images), "train", shape=(1, 16, 16))
    assert len(data) == 200 and data.class_names == ("horizontal", "vertical")
    assert data.labels.tolist() == [0] * 100 + [1] * 100


def test_redact_from_the_command_line_with_the_folder_and_the_users_judge(user_models, capsys, monkeypatch):
    images, gan, judge = user_models
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    code = main(["redact", str(gan), "--data", str(images), "--judge", str(judge), "--forget", "label=0",
                 "--algorithm", "classifier", "--epochs", "1", "--eval-samples", "200", "--batch-size", "16",
                 "--json"])
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0, out
    result = json.loads(out)
    assert result["status"] == "succeeded"
    assert result["redaction_set"] == "label 0 (horizontal)"
    assert result["omega_train_size"] == 100 and result["real_size"] == 100
    assert result["fid_metric"] == "FID[my-judge]" and result["is_metric"] == "IS[my-judge]"
    assert result["invalidity_after"] < result["invalidity_before"]
    config = RunStore().get(result["run"]).config
    assert config["params"]["data"] == str(images) and config["params"]["judge"] == str(judge)


def test_redact_by_ids_needs_no_judge(user_models, capsys, monkeypatch):
    images, gan, _ = user_models
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    code = main(["redact", str(gan), "--data", str(images), "--forget", "ids=0-9", "--algorithm", "data",
                 "--epochs", "1", "--eval-samples", "100", "--batch-size", "32", "--first-epoch-checks", "1",
                 "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and result["status"] == "succeeded"
    assert result["omega_train_size"] == 10
    assert "fid_metric" not in result  # no judge, no IS/FID, but the redaction ran


def test_a_label_set_without_a_judge_fails_before_loading_the_data(user_models, capsys, monkeypatch, tmp_path):
    _, gan, _ = user_models
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    missing = tmp_path / "not-loaded"  # never read: the judge check comes first
    missing.mkdir()
    code = main(["redact", str(gan), "--data", str(missing), "--forget", "label=0", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2
    assert "needs a label classifier as judge" in out["error"] and "--judge" in out["hint"]
    assert not RunStore().ids()


def test_redact_from_the_app_with_the_folder_and_the_users_judge(user_models, monkeypatch):
    images, gan, judge = user_models
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    at = app_test_factory(monkeypatch)().run()
    at.radio(key="pick_source").set_value("Folder").run()
    at.text_input(key="pick_path").set_value(str(gan)).run()
    at.text_input(key="pick_data").set_value(str(images))
    at.text_input(key="pick_judge").set_value(str(judge)).run()
    assert_clean(at)
    at.switch_page("pages/redact.py").run()
    assert_clean(at)
    assert at.pills(key="redact_kinds").value == ["Labels"]  # the user's judge labels generated bars
    assert any("100 of 200 training samples" in c.value for c in at.caption)
    at.segmented_control(key="redact_algorithm").set_value("classifier")
    at.number_input(key="redact_epochs").set_value(1)
    at.number_input(key="redact_batch").set_value(16)
    at.number_input(key="redact_eval").set_value(1000).run()
    command = at.code[0].value
    assert f"--data {images}" in command and f"--judge {judge}" in command
    at.button(key="redact_start").click().run()
    assert_clean(at)
    run_id = at.session_state["redact_run"]
    run = shared_runner().wait(run_id, timeout=240)
    assert run.status == "succeeded", run.error
    metrics = RunStore().get(run_id).metrics
    assert metrics["fid_metric"] == "FID[my-judge]"
    assert metrics["invalidity_after"] < metrics["invalidity_before"]


def test_the_data_page_takes_a_folder_path_and_the_sidebar_says_what_the_model_can_do(user_models, monkeypatch):
    images, gan, _ = user_models
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    at = app_test_factory(monkeypatch)().run()
    at.radio(key="pick_source").set_value("Folder").run()
    at.text_input(key="pick_path").set_value(str(gan)).run()
    overview = next(m.value for m in at.sidebar.markdown if "**redact**" in m.value)
    assert "data 1x16x16" in overview and "discriminator :green[yes]" in overview
    assert ":red[✗] **tame** · it works on flow models and this is a gan" in overview
    at.switch_page("pages/data.py").run()
    at.text_input(key="data_own_path").set_value(str(images)).run()
    at.button(key="data_own_use").click().run()
    assert_clean(at)
    assert at.session_state["pick_data"] == str(images)
    assert at.text_input(key="pick_data").value == str(images)  # the sidebar's box follows
    assert at.selectbox(key="data_name").value == str(images)
    assert any("200 of 200 samples" in c.value for c in at.caption)  # the builder browses the user's images


def test_an_uploaded_zip_of_the_folder_is_the_data_of_the_redact_page(user_models, monkeypatch, tmp_path):
    images, gan, judge = user_models
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    archive = tmp_path / "bars.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(images.rglob("*.png")):
            z.write(path, f"bars/{path.relative_to(images)}")
    at = app_test_factory(monkeypatch)().run()
    at.radio(key="pick_source").set_value("Folder").run()
    at.text_input(key="pick_path").set_value(str(gan)).run()
    at.text_input(key="pick_judge").set_value(str(judge)).run()
    at.switch_page("pages/data.py").run()
    at.get("file_uploader")[0].upload("bars.zip", archive.read_bytes(), "application/zip")
    at.run()
    at.button(key="data_own_use_upload").click().run()
    assert_clean(at)
    assert at.session_state["pick_data"].endswith(".zip")
    at.switch_page("pages/redact.py").run()
    assert_clean(at)
    assert any("100 of 200 training samples" in c.value for c in at.caption)  # label 0 of the uploaded images


def test_the_deletion_baseline_of_a_users_gan_fails_before_loading_the_data(user_models, capsys, monkeypatch):
    images, gan, _ = user_models
    monkeypatch.setenv("LETHE_TRUST_FACTORIES", TRUST)
    code = main(["redact", str(gan), "--data", str(images), "--forget", "ids=0-9", "--baseline", "deletion",
                 "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2 and "--baseline deletion retrains 'my-dcgan' from scratch with its zoo recipe" in out["error"]
    assert not RunStore().ids()
