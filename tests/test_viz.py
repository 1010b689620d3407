"""core.viz: grids, figures, projections and previews are pure functions of data with checkable outputs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from core.errors import BadCheckpoint, LetheError, ShapeMismatch
from core.models import GANBundle, ModelCard, load_bundle, save_bundle
from core.models.archive import unpack_model, zip_model
from core.viz.embedding import cache_path, project
from core.viz.figures import curves_figure, embedding_figure, metric_history, scatter_figure, selected_ids
from core.viz.images import image_grid, png_bytes, thumbnails, to_uint8_rgb
from core.viz.samples import default_temperature, preview


def test_image_grid_tiles_images_with_padding_in_row_major_order():
    images = torch.zeros(5, 1, 2, 3)
    images[4] = 1.0  # the last tile is white
    grid = image_grid(images, ncol=3, pad=1, pad_value=0.5)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 3) and grid.dtype == np.uint8
    assert (grid[4:6, 5:8] == 255).all()  # row 1, column 1
    assert (grid[0] == 128).all()  # padding


def test_thumbnails_enlarge_by_pixel_repetition_and_keep_colour():
    rgb = torch.tensor([1.0, 0.0, 0.5]).reshape(1, 3, 1, 1).expand(2, 3, 2, 2)
    thumbs = thumbnails(rgb, scale=3)
    assert len(thumbs) == 2 and thumbs[0].shape == (6, 6, 3)
    assert thumbs[0][0, 0].tolist() == [255, 0, 128]
    assert png_bytes(thumbs[0]).startswith(b"\x89PNG")


def test_images_of_the_wrong_shape_are_refused_with_advice():
    with pytest.raises(ShapeMismatch, match="scatter_figure"):
        to_uint8_rgb(torch.zeros(4, 2))


def test_selected_ids_reads_sample_ids_back_from_a_plotly_selection():
    selection = {"points": [{"customdata": 7}, {"customdata": [3]}, {"customdata": 7}, {"x": 1.0}]}
    assert selected_ids(selection) == [3, 7]
    assert selected_ids(None) == [] and selected_ids({"points": []}) == []


def test_embedding_figure_keeps_ids_per_label_and_rings_the_forget_set():
    coords = np.arange(12, dtype=np.float32).reshape(6, 2)
    fig = embedding_figure(coords, ids=[10, 11, 12, 13, 14, 15], labels=[0, 1, 0, 1, 0, 1], label_names=("a", "b"),
                           selected=[11, 14])
    by_name = {trace.name: list(trace.customdata) for trace in fig.data}
    assert by_name == {"a": [10, 12, 14], "b": [11, 13, 15], "in forget set": [11, 14]}
    assert fig.layout.dragmode == "lasso"


def test_scatter_figure_splits_labelled_clouds_and_mutes_the_training_data():
    fig = scatter_figure({"training data": torch.randn(50, 2), "samples": torch.randn(20, 2)},
                         {"samples": torch.tensor([0, 1] * 10)}, label_names=("even", "odd"))
    assert [t.name for t in fig.data] == ["training data", "samples: even", "samples: odd"]
    assert fig.data[0].marker.color == "#9E9E9E"
    hist = scatter_figure({"samples": torch.randn(30, 1)})
    assert hist.data[0].type == "histogram"


def test_metric_history_and_curves_overlay_runs():
    events = pd.DataFrame({"seq": [1, 2, 3], "step": [1, 2, 3], "loss": [3.0, 2.0, None], "acc": [None, 0.5, 0.7]})
    long = metric_history(events, ignore=("seq",))
    assert sorted(zip(long["metric"], long["step"])) == [("acc", 2), ("acc", 3), ("loss", 1), ("loss", 2)]
    both = pd.concat([long.assign(run="r1"), long.assign(run="r2")])
    fig = curves_figure(both, ["loss"])
    assert [t.name for t in fig.data] == ["r1 · loss", "r2 · loss"]
    assert curves_figure(pd.DataFrame(columns=["step", "metric", "value"])).layout.annotations


def test_pca_projection_separates_two_clusters_and_is_cached_on_disk():
    gen = torch.Generator().manual_seed(0)
    features = torch.cat([torch.randn(40, 10, generator=gen), torch.randn(40, 10, generator=gen) + 8]).numpy()
    coords = project(features, "pca", key="two-clusters")
    assert coords.shape == (80, 2)
    assert abs(coords[:40, 0].mean() - coords[40:, 0].mean()) > 10 * coords[:40, 0].std()
    path = cache_path("two-clusters", "pca", features, 0)
    assert path.is_file()
    np.save(path, np.full((80, 2), 42.0, np.float32))  # a second call must read the cache, not recompute
    assert (project(features, "pca", key="two-clusters") == 42.0).all()
    assert project(features[:, :2], "pca").tolist() == features[:, :2].tolist()  # 2-D data is its own view
    with pytest.raises(LetheError, match="Choose one of"):
        project(features, "tsne")


class _Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 16)

    def forward(self, z):
        return torch.tanh(self.net(z)).reshape(-1, 1, 4, 4)


def _tiny_gan() -> GANBundle:
    card = ModelCard("tiny", "gan", "factory:tests.tiny", data_shape=[1, 4, 4])
    return GANBundle(card=card, generator=_Generator(), latent_dim=4)


def test_preview_of_a_gan_is_reproducible_from_the_seed():
    gan = _tiny_gan()
    a, b, c = preview(gan, n=6, seed=1), preview(gan, n=6, seed=1), preview(gan, n=6, seed=2)
    assert a.images.shape == (6, 1, 4, 4) and 0 <= a.images.min() and a.images.max() <= 1
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    with pytest.raises(LetheError, match="not conditional"):
        preview(gan, label=3)


def test_models_travel_as_zip_and_uploads_unpack_only_the_two_model_files(tmp_path):
    from core.models import load_model

    bundle = load_model("mnist-lenet", "cpu")
    save_bundle(bundle.copy(), tmp_path / "model")
    archive = zip_model(tmp_path / "model")
    assert sorted(zipfile.ZipFile(io.BytesIO(archive)).namelist()) == ["card.json", "model.safetensors"]
    folder = unpack_model({"lenet.zip": archive}, tmp_path / "uploads")
    assert load_bundle(folder).card.name == "mnist-lenet"
    files = {"model.safetensors": (folder / "model.safetensors").read_bytes(), "card.json": (folder / "card.json").read_bytes()}
    assert unpack_model(files, tmp_path / "uploads") == folder  # same content, same folder
    crafted = io.BytesIO()
    with zipfile.ZipFile(crafted, "w") as zf:
        zf.writestr("../../evil/card.json", "{}")
    with pytest.raises(BadCheckpoint, match="lacks model.safetensors"):
        unpack_model({"x.zip": crafted.getvalue()}, tmp_path / "uploads")
    assert not (tmp_path / "evil").exists()
    with pytest.raises(BadCheckpoint, match="not a valid zip"):
        unpack_model({"x.zip": b"not a zip"}, tmp_path / "uploads")


def test_image_flows_preview_at_glows_temperature_and_toy_flows_at_one():
    from core.models import load_model

    image_flow, toy_flow = load_model("mnist-flow", "cpu"), load_model("toy-flow", "cpu")
    assert default_temperature(image_flow) == 0.7 and default_temperature(toy_flow) == 1.0
    assert preview(image_flow, n=4).note == "temperature 0.7"
    assert preview(toy_flow, n_points=50).note == "temperature 1"


# --- run charts as small multiples (core.viz.runs) ------------------------------------------------------------


def _redaction_events(scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"seq": [1, 2, 3], "step": [0, 10, 20], "epoch": [0.0, 0.5, 1.0],
                         "loss_d": [None, 1.2, 1.1], "invalidity": [0.1 * scale, 0.02, 0.01],
                         "invalidity_se": [0.003, 0.001, 0.001], "IS[mnist-lenet]": [7.7, 7.4, 7.3],
                         "FID[mnist-lenet]": [43.0, 30.0, 27.0], "omega_size": [400, 400, 400],
                         "validity_queries": [0, 0, 0]})


def test_small_multiples_put_the_main_metric_first_and_leave_counts_out():
    from core.viz.runs import curve_metrics, metric_panels

    metrics = curve_metrics({"a": _redaction_events()}, "redact")
    assert metrics == ["invalidity", "IS[mnist-lenet]", "FID[mnist-lenet]", "loss_d"]
    fig = metric_panels({"label 0 · classifier": _redaction_events(), "label 0 · data": _redaction_events(2)},
                        "redact")
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "invalidity (share of samples in Ω)" and "omega_size" not in " ".join(titles)
    assert fig.layout.yaxis.tickformat == ".0%"  # the invalidity panel reads in percent
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2  # one 95% band per run around invalidity, from invalidity_se
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["label 0 · classifier", "label 0 · data"]  # runs named in words, once each
    assert {t.xaxis for t in fig.data if t.name == "label 0 · data"} == {"x", "x2", "x3", "x4"}  # own panels


def test_live_taming_panels_use_human_names():
    from core.viz.runs import label, metric_panels

    events = pd.DataFrame({"step": [1, 2], "kl_forward": [0.01, 0.02], "distance_checked_max_abs": [None, 2.5]})
    fig = metric_panels({"person 17": events}, "tame")
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["max |distance|, eq. 10 check (σ_R)", "KL(base ‖ tamed), remember (nats)"]
    assert label("something_new") == "something new"
    assert metric_panels({}, "tame").layout.annotations[0].text == "no metrics reported yet"
