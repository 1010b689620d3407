"""A user's own data as a data spec: folders (ImageFolder or flat), zips and .npz files become Lethe datasets in
[0, 1], fitted to a model's shape with clear messages when they cannot be, bounded against hostile input, and
selectable by ids, labels, attributes, identities and saved sets like the built-in datasets."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import load
from core.data.selection import Selection, parse_spec, save_selection, select, split_forget_retain
from core.data.uploads import save_data_upload
from core.errors import DatasetNotFound, LetheError, ShapeMismatch


def _png(path, size=(12, 10), colour=None, value=128, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour if colour is not None else value).save(path)


@pytest.fixture
def image_folder(tmp_path):
    """cats/ (3 dark images) and dogs/ (2 bright images), 12 wide x 10 high, grey."""
    root = tmp_path / "pets"
    for i in range(3):
        _png(root / "cats" / f"c{i}.png", value=20)
    for i in range(2):
        _png(root / "dogs" / f"d{i}.png", value=230)
    (root / "README.txt").write_text("not an image, ignored")
    return root


def test_an_image_folder_gives_labels_from_sorted_sub_folders(image_folder):
    data = load(str(image_folder), "train")
    assert data.name == str(image_folder.resolve())
    assert data.class_names == ("cats", "dogs")
    assert data.labels.tolist() == [0, 0, 0, 1, 1]
    assert data.ids.tolist() == [0, 1, 2, 3, 4]
    assert data.x.shape == (5, 1, 10, 12) and data.x.dtype == torch.float32
    assert data.x[0].max() == pytest.approx(20 / 255) and data.x[-1].min() == pytest.approx(230 / 255)


def test_images_are_resized_and_grey_is_repeated_for_an_rgb_model(image_folder):
    data = load(str(image_folder), "train", shape=(3, 16, 16))
    assert data.x.shape == (5, 3, 16, 16)
    assert torch.allclose(data.x[:, 0], data.x[:, 2])
    assert float(data.x.min()) >= 0 and float(data.x.max()) <= 1


def test_colour_images_for_a_grey_model_are_refused_by_name(tmp_path):
    _png(tmp_path / "flat" / "a.png", colour=(255, 0, 0), mode="RGB")
    with pytest.raises(ShapeMismatch, match="3 channel\\(s\\) but the model works on 1"):
        load(str(tmp_path / "flat"), "train", shape=(1, 8, 8))


def test_grey_saved_as_rgb_is_accepted_by_a_grey_model(tmp_path):
    _png(tmp_path / "flat" / "a.png", colour=(90, 90, 90), mode="RGB")
    data = load(str(tmp_path / "flat"), "train", shape=(1, 8, 8))
    assert data.x.shape == (1, 1, 8, 8) and data.labels is None


def test_a_flat_folder_has_no_labels_and_mixed_sizes_need_a_model(tmp_path):
    _png(tmp_path / "flat" / "a.png", size=(8, 8))
    _png(tmp_path / "flat" / "b.png", size=(9, 9))
    with pytest.raises(ShapeMismatch, match="2 different sizes"):
        load(str(tmp_path / "flat"), "train")
    data = load(str(tmp_path / "flat"), "train", shape=(1, 8, 8))
    assert data.labels is None and len(data) == 2


def test_loose_images_beside_class_folders_are_an_error(image_folder):
    _png(image_folder / "stray.png")
    with pytest.raises(LetheError, match="mixes class sub-folders with loose images"):
        load(str(image_folder), "train")


def test_missing_and_empty_and_non_images(tmp_path):
    with pytest.raises(DatasetNotFound, match="no file or folder"):
        load(str(tmp_path / "nowhere"), "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFound, match="holds no images"):
        load(str(tmp_path / "empty"), "train")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    with pytest.raises(LetheError, match="not an image Lethe can read"):
        load(str(tmp_path / "bad"), "train")


def test_user_data_has_one_split(image_folder):
    with pytest.raises(LetheError, match="one split"):
        load(str(image_folder), "test")


def test_a_zip_of_the_folder_reads_like_the_folder(image_folder, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(image_folder.rglob("*.png")):
            z.write(path, f"pets/{path.relative_to(image_folder)}")  # wrapped in one top folder, as zip -r does
    from_zip, from_folder = load(str(archive), "train"), load(str(image_folder), "train")
    assert from_zip.class_names == from_folder.class_names
    assert torch.equal(from_zip.labels, from_folder.labels) and torch.equal(from_zip.x, from_folder.x)


def test_an_uploaded_zip_is_stored_once_by_content(image_folder, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(image_folder.rglob("*.png")):
            z.write(path, str(path.relative_to(image_folder)))
    first = save_data_upload("pets.zip", archive.read_bytes())
    assert save_data_upload("renamed.zip", archive.read_bytes()) == first
    assert len(load(str(first), "train")) == 5
    with pytest.raises(LetheError, match="not a .zip or .npz"):
        save_data_upload("model.pt", b"x")


def test_npz_with_every_column(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)  # N x H x W x C
    np.savez(tmp_path / "faces.npz", images=images, labels=np.array([0, 1, 0, 1, 2, 2]),
             class_names=np.array(["a", "b", "c"]), attributes=np.eye(6, 2, dtype=np.uint8),
             attribute_names=np.array(["glasses", "hat"]), identities=np.array([5, 5, 6, 6, 7, 7]))
    data = load(str(tmp_path / "faces.npz"), "train", shape=(3, 8, 8))
    assert data.x.shape == (6, 3, 8, 8)
    assert torch.allclose(data.x[0, :, 1, 2], torch.from_numpy(images[0, 1, 2] / 255).float())
    assert data.class_names == ("a", "b", "c") and data.attribute_names == ("glasses", "hat")
    assert data.attributes[:, 0].tolist() == [True] + [False] * 5
    assert data.identities.tolist() == [5, 5, 6, 6, 7, 7]


def test_npz_pixel_ranges(tmp_path):
    np.savez(tmp_path / "signed.npz", images=np.full((2, 4, 4), -1.0, np.float32))
    assert float(load(str(tmp_path / "signed.npz"), "train").x.max()) == 0.0  # [-1, 1] mapped to [0, 1]
    np.savez(tmp_path / "raw.npz", images=np.full((2, 4, 4), 255.0, np.float32))
    with pytest.raises(LetheError, match="range over \\[255, 255\\]"):
        load(str(tmp_path / "raw.npz"), "train")
    np.savez(tmp_path / "nan.npz", images=np.full((2, 4, 4), np.nan, np.float32))
    with pytest.raises(LetheError, match="NaN"):
        load(str(tmp_path / "nan.npz"), "train")


def test_npz_is_read_without_pickle_and_checked(tmp_path):
    np.savez(tmp_path / "objects.npz", images=np.array([object()] * 2, dtype=object))
    with pytest.raises(LetheError, match="will not read"):
        load(str(tmp_path / "objects.npz"), "train")
    header = io.BytesIO()  # an .npy member whose header claims 1,000 64x64 images and holds 10 bytes
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (1000, 64, 64)})
    with zipfile.ZipFile(tmp_path / "lies.npz", "w") as archive:
        archive.writestr("images.npy", header.getvalue() + bytes(10))
    with pytest.raises(LetheError, match="lies.npz is corrupt .*Save it again"):
        load(str(tmp_path / "lies.npz"), "train")
    np.savez(tmp_path / "nolabels.npz", pixels=np.zeros((2, 4, 4)))
    with pytest.raises(LetheError, match="no `images` or `points` array"):
        load(str(tmp_path / "nolabels.npz"), "train")
    np.savez(tmp_path / "short.npz", images=np.zeros((3, 4, 4), np.uint8), labels=np.array([0, 1]))
    with pytest.raises(LetheError, match="`labels` .* must be 3 non-negative integers"):
        load(str(tmp_path / "short.npz"), "train")


def test_bounds_on_count_file_size_and_pixels(tmp_path, monkeypatch, image_folder):
    monkeypatch.setenv("LETHE_MAX_IMAGES", "4")
    with pytest.raises(LetheError, match="more than 4 images"):
        load(str(image_folder), "train")
    monkeypatch.setenv("LETHE_MAX_IMAGES", "100")
    monkeypatch.setenv("LETHE_MAX_IMAGE_BYTES", "50")
    with pytest.raises(LetheError, match="larger than"):
        load(str(image_folder), "train")
    monkeypatch.delenv("LETHE_MAX_IMAGE_BYTES")
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    Image.new("1", (5000, 5000)).save(bomb / "big.png")  # a few KB on disk, 25 megapixels decoded
    with pytest.raises(LetheError, match="decompression bomb"):
        load(str(bomb), "train")
    monkeypatch.setenv("LETHE_MAX_DATA_BYTES", "100")
    np.savez(tmp_path / "big.npz", images=np.zeros((10, 8, 8), np.uint8))
    with pytest.raises(LetheError, match="unpacks to"):
        load(str(tmp_path / "big.npz"), "train")


def test_selections_work_on_user_data(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((6, 4, 4), np.uint8), labels=np.array([0, 1, 0, 1, 2, 2]),
             attributes=np.array([[1], [0], [1], [0], [0], [1]]), attribute_names=np.array(["hat"]),
             identities=np.array([3, 3, 4, 4, 5, 5]))
    spec = str(tmp_path / "d.npz")
    data = load(spec, "train")
    assert select(data, parse_spec("label=0", data.name)).tolist() == [True, False, True, False, False, False]
    assert select(data, parse_spec("attr=hat", data.name)).nonzero().flatten().tolist() == [0, 2, 5]
    assert select(data, parse_spec("identity=4", data.name)).nonzero().flatten().tolist() == [2, 3]
    assert select(data, parse_spec("ids=1,5", data.name)).nonzero().flatten().tolist() == [1, 5]
    save_selection("mine", Selection(data.name, ids=(0, 1)))
    forget, retain = split_forget_retain(None, parse_spec("saved=mine", data.name))  # reloads the data by name
    assert forget.ids.tolist() == [0, 1] and len(retain) == 4


def test_a_zip_with_a_garbled_image_stream_is_refused_with_a_message(image_folder, tmp_path):
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in sorted(image_folder.rglob("*.png")):
            z.write(path, str(path.relative_to(image_folder)))
    data = bytearray(archive.read_bytes())
    first = data.find(b"PK\x03\x04")
    name_len, extra_len = int.from_bytes(data[first + 26:first + 28], "little"), int.from_bytes(data[first + 28:first + 30], "little")
    start = first + 30 + name_len + extra_len
    data[start:start + 16] = b"\xff" * 16  # garble the first member's deflate stream
    archive.write_bytes(bytes(data))
    with pytest.raises(LetheError, match="cannot read"):
        load(str(archive), "train")


def test_npz_points_are_data_for_the_low_dimensional_models(tmp_path, image_folder):
    points = np.array([[0.5, -2.0], [3.0, 1.0], [-1.5, 0.25]], np.float32)
    np.savez(tmp_path / "ring.npz", points=points, labels=np.array([0, 1, 1]))
    data = load(str(tmp_path / "ring.npz"), "train", shape=(2,))
    assert data.x.shape == (3, 2) and not data.is_image
    assert torch.equal(data.x, torch.from_numpy(points))  # no pixel range: the points are kept as they are
    assert data.labels.tolist() == [0, 1, 1] and data.meta["layout"] == "npz-points"
    np.savez(tmp_path / "as_images.npz", images=points)  # an N x D `images` array is read as points too
    assert torch.equal(load(str(tmp_path / "as_images.npz"), "train", shape=(2,)).x, data.x)


def test_points_and_images_meet_the_wrong_model_with_a_message(tmp_path, image_folder):
    np.savez(tmp_path / "ring.npz", points=np.zeros((4, 2), np.float32))
    with pytest.raises(ShapeMismatch, match="2-D points, but the model works on 1x28x28 images"):
        load(str(tmp_path / "ring.npz"), "train", shape=(1, 28, 28))
    with pytest.raises(ShapeMismatch, match="2-D points, but the model works on 3-D points"):
        load(str(tmp_path / "ring.npz"), "train", shape=(3,))
    with pytest.raises(ShapeMismatch, match="works on 2-D points, not images") as err:
        load(str(image_folder), "train", shape=(2,))
    assert "`points` array" in err.value.hint
    np.savez(tmp_path / "both.npz", points=np.zeros((4, 2)), images=np.zeros((4, 8, 8)))
    with pytest.raises(LetheError, match="both `images` and `points`"):
        load(str(tmp_path / "both.npz"), "train", shape=(2,))
    np.savez(tmp_path / "inf.npz", points=np.array([[0.0, np.inf]]))
    with pytest.raises(LetheError, match="NaN or infinite"):
        load(str(tmp_path / "inf.npz"), "train", shape=(2,))


def test_heldout_images_become_the_test_split_of_the_training_data(image_folder, tmp_path):
    from core.data.user import load_heldout

    train = load(str(image_folder), "train", shape=(1, 10, 12))
    _png(tmp_path / "held" / "dogs" / "d9.png", value=200)  # a held-out folder may lack a class: labels by name
    test = load_heldout(str(tmp_path / "held"), train)
    assert test.name == train.name and test.split == "test"
    assert test.class_names == ("cats", "dogs") and test.labels.tolist() == [1]
    assert test.x.shape == (1, 1, 10, 12)
    _png(tmp_path / "owls" / "birds" / "o.png", value=90)
    with pytest.raises(LetheError, match="classes the training data does not: birds"):
        load_heldout(str(tmp_path / "owls"), train)


def test_a_training_image_among_the_heldout_ones_is_refused(image_folder, tmp_path):
    from core.data.user import load_heldout

    train = load(str(image_folder), "train")
    _png(tmp_path / "held" / "cats" / "new.png", value=60)
    _png(tmp_path / "held" / "cats" / "copy.png", value=20)  # the same pixels as the training cats
    with pytest.raises(LetheError, match="1 of the 2 held-out images .* are also in the training data") as err:
        load_heldout(str(tmp_path / "held"), train)
    assert "not trained on" in err.value.hint
