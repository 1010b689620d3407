"""Dataset loaders: every name loads or says where it looked; real loaders read torchvision layouts offline;
the papers' toy distributions have their stated moments."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from core.data import DATASETS, describe, load
from core.data.home import data_dir
from core.data.torchvision_sets import DEBIAN_FASHION, load_celeba, load_idx_dataset
from core.errors import DatasetNotFound, LetheError


def _write_idx(folder: Path, prefix: str, images: torch.Tensor, labels: torch.Tensor, gz: bool) -> None:
    """Write IDX files in the MNIST format (big-endian header, uint8 payload)."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    blobs = {f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 2051, n, h, w) + images.numpy().tobytes(),
             f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 2049, n) + labels.numpy().tobytes()}
    for name, blob in blobs.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (folder / name).write_bytes(blob)


def _fake_mnist(folder: Path, gz: bool) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (7, 28, 28), generator=gen, dtype=torch.uint8)
    test = torch.randint(0, 256, (3, 28, 28), generator=gen, dtype=torch.uint8)
    _write_idx(folder, "train", train, torch.arange(7, dtype=torch.uint8), gz)
    _write_idx(folder, "t10k", test, torch.tensor([9, 8, 7], dtype=torch.uint8), gz)
    return train, test


def test_every_dataset_is_described_and_loads_or_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("LETHE_DATA_ROOT", str(tmp_path / "empty-root"))
    for name, text in DATASETS.items():
        info = describe(name)
        assert info["description"] == text and info["splits"] and info["shape"]
        if name == "synthfaces-64":
            continue  # rendering 12k faces at 64 x 64 takes tens of seconds; test_data_synthfaces covers size 64
        try:
            data = load(name, "test")
        except DatasetNotFound as err:
            assert str(tmp_path / "empty-root") in err.message and err.hint
            continue
        assert data.name == name and data.shape == tuple(info["shape"]) and len(data) == info["splits"]["test"]


def test_unknown_dataset_or_split_is_a_lethe_error():
    with pytest.raises(LetheError, match="Known datasets: mnist"):
        load("imagenet")
    with pytest.raises(LetheError, match="unknown split"):
        load("mnist", "valid")
    with pytest.raises(LetheError, match="Known datasets"):
        describe("imagenet")


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(),
                    reason="Debian package dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_the_debian_package_is_prepared_once_and_official_splits_kept():
    train = load("fashion-mnist", "train")
    test = load("fashion-mnist", "test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.x.shape[1:] == (1, 28, 28) and train.x.dtype == torch.float32
    assert 0 <= float(train.x.min()) and float(train.x.max()) == 1.0
    assert torch.equal(torch.bincount(test.labels), torch.full((10,), 1000))
    assert test.class_names[0] == "T-shirt/top" and test.ids[0] == 60_000
    raw = data_dir() / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])


def test_missing_root_raises_dataset_not_found_naming_the_paths(tmp_path):
    root = tmp_path / "nowhere"
    for name in ("fashion-mnist", "mnist-full"):
        with pytest.raises(DatasetNotFound) as err:
            load(name, "train", root=root)
        assert str(root) in err.value.message and "root=" in err.value.hint
    with pytest.raises(DatasetNotFound) as err:
        load("fashion-mnist", "train", root=root)
    assert "apt-get install dataset-fashion-mnist" in err.value.hint
    with pytest.raises(DatasetNotFound) as err:
        load("celeba", "train", root=root)
    assert str(root / "celeba") in err.value.message and "img_align_celeba" in err.value.hint


def test_idx_files_directly_in_the_named_root_are_prepared_into_lethe_home(tmp_path):
    train, _ = _fake_mnist(tmp_path / "flat", gz=True)
    data = load("mnist-full", "train", root=tmp_path / "flat")
    assert torch.equal(data.x[:, 0], train.float() / 255)
    assert (data_dir() / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


@pytest.mark.parametrize("gz", [True, False])
def test_full_mnist_from_a_user_root_in_torchvision_layout(tmp_path, monkeypatch, gz):
    train, test = _fake_mnist(tmp_path / "root" / "MNIST" / "raw", gz)
    monkeypatch.setenv("LETHE_DATA_ROOT", str(tmp_path / "root"))
    data = load_idx_dataset("mnist-full", "all")
    assert torch.equal(data.x[:7, 0], train.float() / 255) and torch.equal(data.x[7:, 0], test.float() / 255)
    assert data.labels.tolist() == list(range(7)) + [9, 8, 7] and data.ids.tolist() == list(range(10))
    assert load("mnist-full", "test", root=tmp_path / "root").ids.tolist() == [7, 8, 9]


_ATTRS = ["5_o_Clock_Shadow", "Eyeglasses", "Smiling"] + [f"Attr_{i}" for i in range(37)]


def _fake_celeba(root: Path) -> torch.Tensor:
    from PIL import Image

    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    parts = [0, 0, 0, 1, 2, 2]
    attrs = torch.tensor([[1 if (i + j) % 3 == 0 else -1 for j in range(40)] for i in range(6)])
    for i, name in enumerate(names):
        Image.new("RGB", (178, 218), (40 * i,) * 3).save(folder / "img_align_celeba" / name, quality=95)
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, parts)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{n} {100 + i // 2}\n" for i, n in enumerate(names)))
    (folder / "list_attr_celeba.txt").write_text(
        f"6\n{' '.join(_ATTRS)} \n" + "".join(f"{n} " + " ".join(f"{v:2d}" for v in a.tolist()) + "\n"
                                               for n, a in zip(names, attrs)))
    (folder / "list_bbox_celeba.txt").write_text(
        "6\nimage_id x_1 y_1 width height\n" + "".join(f"{n} 1 2 3 4\n" for n in names))
    (folder / "list_landmarks_align_celeba.txt").write_text(
        "6\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        + "".join(f"{n} " + " ".join(["50"] * 10) + "\n" for n in names))
    return attrs > 0


def test_celeba_reads_images_attributes_identities_and_official_splits(tmp_path):
    attrs = _fake_celeba(tmp_path / "root")
    train = load_celeba("train", root=tmp_path / "root", size=32)
    test = load("celeba", "test", root=tmp_path / "root")
    assert train.x.shape == (3, 3, 32, 32) and test.x.shape == (2, 3, 64, 64)
    assert train.attribute_names == tuple(_ATTRS)
    assert torch.equal(train.attributes, attrs[:3]) and torch.equal(test.attributes, attrs[4:])
    assert train.identities.tolist() == [100, 100, 101] and test.ids.tolist() == [4, 5]
    assert abs(float(test.x[1].mean()) - 200 / 255) < 0.03  # image 6 was filled with 200
    capped = load_celeba("all", root=tmp_path / "root", size=16, max_images=4)
    assert len(capped) == 4 and capped.meta["in_split"] == 6


def test_gaussian2d_has_mean_one_one_and_covariance_point_eight():
    x = load("gaussian2d", "train").x
    assert torch.allclose(x.mean(0), torch.ones(2), atol=0.05)
    assert torch.allclose(torch.cov(x.T), torch.tensor([[1.0, 0.8], [0.8, 1.0]]), atol=0.06)


def test_clusters6_labels_are_cluster_mod_2_with_std_half():
    data = load("clusters6", "train")
    cluster = data.meta["cluster"]
    assert torch.equal(data.labels, cluster % 2)
    assert torch.bincount(cluster).min() > 1400
    residual = torch.cat([data.x[cluster == c] - data.x[cluster == c].mean(0) for c in range(6)])
    assert abs(float(residual.std()) - 0.5) < 0.02


def test_ring5_and_normal1d():
    ring = load("ring5", "train")
    assert sorted(torch.unique(ring.labels).tolist()) == [0, 1, 2, 3, 4]
    assert ring.x[ring.labels == 0].mean(0).abs().max() < 0.05  # mode 0 is the centre
    z = load("normal1d", "train").x
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.03


def test_train_and_test_toy_draws_are_independent_and_reproducible():
    a, b = load("gaussian2d", "train").x, load("gaussian2d", "test").x
    assert not torch.equal(a[: len(b)], b)
    assert torch.equal(load("gaussian2d", "test").x, b)
