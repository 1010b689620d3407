"""The forget-set builder, driven through widget keys: clicking gallery images, filtering by label, attribute
expression and identity, bulk add / drop, saving by name, listing and reloading saved sets.

The builder runs on a small made-up dataset (so attribute and identity filters are tested without rendering
synthfaces) and on the Data page itself with MNIST.
"""

from __future__ import annotations

import base64

import numpy as np
import plotly.io
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app_harness import app_test_factory, assert_clean
from core.data.selection import list_selections, load_selection


@pytest.fixture
def app_test(monkeypatch):
    """Builds AppTests of app.py that run like the real server (see app_harness)."""
    return app_test_factory(monkeypatch)


def _builder_script() -> None:
    """A page with only the builder, on 30 tiny images: 3 labels, 2 attributes, 6 identities."""
    import torch

    from core.data import ImageData
    from pages._forget_set import forget_set_builder

    n = 30
    ids = torch.arange(100, 100 + n)
    data = ImageData(
        "toyfaces", "train", torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0)), ids,
        labels=torch.arange(n) % 3, class_names=("a", "b", "c"),
        attributes=torch.stack([torch.arange(n) % 2 == 0, torch.arange(n) % 5 == 0], 1),
        attribute_names=("glasses", "smile"), identities=torch.arange(n) // 5,
    )
    forget_set_builder(data, key="b")


def _builder() -> AppTest:
    """The builder with 24 images per page, so the 30 images span two pages."""
    at = AppTest.from_function(_builder_script, default_timeout=60).run()
    return at.selectbox(key="b_per_page").set_value(24).run()


def _size(at: AppTest) -> int:
    return int(at.metric[0].value.replace(",", ""))


def _boxes(at: AppTest) -> dict[int, object]:
    return {int(c.key.rsplit("::", 1)[1]): c for c in at.checkbox if c.key and c.key.startswith("pick::toyfaces::")}


def test_clicking_gallery_images_adds_and_removes_them():
    at = _builder()
    assert_clean(at)
    assert _size(at) == 0
    boxes = _boxes(at)
    assert sorted(boxes) == list(range(100, 124))  # the first page holds 24 images
    boxes[100].check()
    boxes[105].check().run()
    assert _size(at) == 2
    assert at.session_state["forget::toyfaces"] == {100, 105}
    _boxes(at)[100].uncheck().run()
    assert at.session_state["forget::toyfaces"] == {105}
    assert _boxes(at)[105].value is True


def test_paging_reaches_every_image_and_keeps_picks_across_pages():
    at = _builder()
    _boxes(at)[101].check().run()
    at.number_input(key="b_page").set_value(2).run()
    boxes = _boxes(at)
    assert sorted(boxes) == list(range(124, 130))
    boxes[129].check().run()
    assert at.session_state["forget::toyfaces"] == {101, 129}


def test_filters_by_label_attribute_expression_and_identity_then_add_shown():
    at = _builder()
    at.multiselect(key="b_labels").select(1).run()  # label "b": rows 1, 4, 7, ...
    at.text_input(key="b_expr").input("glasses & ~smile").run()  # even rows that are not multiples of 5
    assert_clean(at)
    shown = sorted(_boxes(at))
    assert shown == [100 + i for i in range(30) if i % 3 == 1 and i % 2 == 0 and i % 5 != 0]
    at.button(key="b_add_filtered").click().run()
    assert at.session_state["forget::toyfaces"] == set(shown)
    at.multiselect(key="b_labels").set_value([]).run()
    at.text_input(key="b_expr").input("").run()
    at.text_input(key="b_identities").input("2").run()  # identity 2 owns rows 10..14
    assert sorted(_boxes(at)) == [110, 111, 112, 113, 114]
    at.button(key="b_add_filtered").click().run()
    assert at.session_state["forget::toyfaces"] == set(shown) | {110, 111, 112, 113, 114}
    at.button(key="b_remove_filtered").click().run()
    assert at.session_state["forget::toyfaces"] == set(shown) - {110, 111, 112, 113, 114}


def test_a_bad_attribute_expression_is_explained_and_the_builder_keeps_working():
    at = _builder()
    at.text_input(key="b_expr").input("glasses & ~moustache").run()
    assert_clean(at)
    assert any("unknown attribute 'moustache'" in e.value for e in at.error)
    assert len(_boxes(at)) == 24  # the filter is ignored, the gallery still shows


def test_a_forget_set_is_saved_by_name_listed_with_its_size_and_reloaded():
    at = _builder()
    for sample_id in (102, 103, 117):
        _boxes(at)[sample_id].check()
    at.run()
    at.text_input(key="b_save_name").input("three-faces").run()
    at.button(key="b_save").click().run()
    assert_clean(at)
    assert "three-faces" in list_selections()
    assert load_selection("three-faces").ids == (102, 103, 117)
    assert "Saved 'three-faces'" in at.success[0].value
    saved = at.dataframe[0].value
    assert saved.iloc[0]["name"] == "three-faces" and saved.iloc[0]["size"] == 3
    at.button(key="b_clear").click().run()
    assert _size(at) == 0
    at.selectbox(key="b_load_name").set_value("three-faces")
    at.button(key="b_load").click().run()
    assert at.session_state["forget::toyfaces"] == {102, 103, 117}
    assert all(_boxes(at)[i].value for i in (102, 103, 117))


def test_saving_without_a_name_or_without_samples_says_what_to_do():
    at = _builder()
    at.button(key="b_save").click().run()
    assert any("needs a name" in e.value for e in at.error)
    at.text_input(key="b_save_name").input("empty").run()
    at.button(key="b_save").click().run()
    assert any("The forget set is empty" in e.value for e in at.error)
    assert list_selections() == []


def _ints(values) -> list[int]:
    """A plotly array as ints (figures travel with base64-packed typed arrays)."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(int).tolist()
    return [int(v) for v in values]


def test_the_embedding_view_marks_the_forget_set():
    at = _builder()
    _boxes(at)[100].check().run()
    at.segmented_control(key="b_view").set_value("Embedding").run()
    assert_clean(at)
    figure = plotly.io.from_json(at.get("plotly_chart")[0].proto.spec)
    marked = [trace for trace in figure.data if trace.name == "in forget set"]
    assert len(marked) == 1 and _ints(marked[0].customdata) == [100]
    assert sum(len(_ints(trace.customdata)) for trace in figure.data if trace.name != "in forget set") == 30


def test_data_page_builds_a_mnist_forget_set_by_label(app_test):
    at = app_test().run().switch_page("pages/data.py").run()
    at.selectbox(key="data_name").set_value("mnist").run()
    at.segmented_control(key="data_view").set_value("Gallery").run()
    at.multiselect(key="data_labels").select(7).run()
    at.button(key="data_add_filtered").click().run()
    assert_clean(at)
    from core.data import load

    train = load("mnist", "train")
    assert at.session_state["forget::mnist"] == set(train.ids[train.labels == 7].tolist())
    assert len(at.get("image")) > 1  # the preview strip and the gallery
    torch.testing.assert_close(torch.tensor(_size(at)), (train.labels == 7).sum())
