"""The forget-set builder: the Data page shows it, and every method page reuses it to pick what to forget.

A forget set is a set of sample ids of one dataset's training split, held in the user's session while it is being
built and saved by name through `core.data.selection`. People add samples three ways:

- clicking images in a paged gallery (each image is covered by its checkbox's label, so a click anywhere on the
  image toggles it; the same widget in the browser and in AppTest, where a test sets `pick::<dataset>::<id>`);
- filters (label, attribute expression such as `glasses & ~smile`, identity) and "add all filtered";
- a lasso or box selection in the embedding view (PCA by default, UMAP on request, both cached on disk).

Widget keys are namespaced by `key` so a method page can embed a second builder without clashes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from core.data import ImageData
from core.data.selection import (Selection, delete_selection, list_selections, load_selection, parse_spec,
                                 save_selection, select, spec_limits)
from core.errors import EmptySelection, LetheError
from core.viz.embedding import features_of, project
from core.viz.figures import embedding_figure, selected_ids
from core.viz.images import image_grid, to_uint8_rgb
from pages._common import guarded, pixel_scale, show_error

GALLERY_COLUMNS = 12
# Each gallery tile is an image with its checkbox under it; the checkbox label's ::before is stretched over the whole
# tile, so a click anywhere on the image toggles the sample (a click on a label toggles its checkbox).
TILE_CSS = """<style>
[class*="st-key-tile-"] { position: relative; }
[class*="st-key-tile-"] [data-testid="stElementContainer"], [class*="st-key-tile-"] [data-testid="stCheckbox"],
[class*="st-key-tile-"] label { position: static; }
[class*="st-key-tile-"] label::before { content: ""; position: absolute; inset: 0; z-index: 2; cursor: pointer; }
[class*="st-key-tile-"] label div, [class*="st-key-tile-"] label p { white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; font-size: 0.8rem; min-width: 0; }
</style>"""


def framed(tile: np.ndarray, width: int = 4) -> np.ndarray:
    """A thumbnail with a red frame: how the gallery marks images already in the forget set."""
    out = tile.copy()
    red = np.array([214, 39, 40], np.uint8)
    out[:width], out[-width:], out[:, :width], out[:, -width:] = red, red, red, red
    return out


def forget_ids(name: str) -> set[int]:
    """The forget set being built for dataset `name` in this session (created empty)."""
    return st.session_state.setdefault(f"forget::{name}", set())


def _set_forget_ids(name: str, ids) -> None:
    st.session_state[f"forget::{name}"] = {int(i) for i in ids}


def _toggle(name: str, sample_id: int, widget: str) -> None:
    ids = forget_ids(name)
    if st.session_state[widget]:
        ids.add(sample_id)
    else:
        ids.discard(sample_id)


def filter_mask(data: ImageData, key: str) -> tuple[torch.Tensor, Selection | None]:
    """Filters the dataset offers (label, attribute expression, identity) -> boolean mask and the filter as a
    `Selection` (None when no filter is set); all filters must hold."""
    criteria: dict = {}
    has_labels = data.labels is not None and bool(data.class_names)
    slots = iter(st.columns(3))  # only the filters this dataset has, left to right
    if has_labels:
        chosen = next(slots).multiselect("Label", list(range(len(data.class_names))), key=f"{key}_labels",
                                         format_func=lambda k: data.class_names[k], placeholder="any label")
        if chosen:
            criteria["labels"] = chosen
    if data.attributes is not None:
        expr = next(slots).text_input("Attribute expression", key=f"{key}_expr", placeholder="glasses & ~smile",
                                      help="Attributes: " + ", ".join(data.attribute_names)
                                      + ". Combine with & | ~ ( ).")
        if expr.strip():
            criteria["attribute"] = expr.strip()
    if data.identities is not None:
        raw = next(slots).text_input("Identities", key=f"{key}_identities", placeholder="e.g. 3, 17, 40-42",
                                     help="Comma-separated identity numbers or ranges.")
        if raw.strip():
            criteria["identities"] = raw
    if not criteria:
        return torch.ones(len(data), dtype=torch.bool), None
    try:
        if "identities" in criteria:
            criteria["identities"] = parse_spec(f"identity={criteria['identities']}", data.name,
                                                  limits=spec_limits(data)).identities
        rule = Selection(data.name, data.split, **criteria)
        return select(data, rule), rule
    except EmptySelection:
        return torch.zeros(len(data), dtype=torch.bool), rule
    except LetheError as exc:  # a typo in an expression: say so, keep the builder usable
        show_error(exc)
        return torch.ones(len(data), dtype=torch.bool), None


def gallery(data: ImageData, shown: ImageData, name: str, key: str) -> None:
    """A page of images with one checkbox each; a checked box puts that sample in the forget set."""
    per_page = st.session_state.get(f"{key}_per_page", 48)
    pages = max(1, -(-len(shown) // per_page))
    if st.session_state.get(f"{key}_page", 1) > pages:  # the filters or the page size shrank the gallery
        st.session_state[f"{key}_page"] = pages
    st.session_state.setdefault(f"{key}_page", 1)
    top = st.columns([1, 1, 5])
    page = top[0].number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=f"{key}_page")
    top[1].selectbox("Per page", (24, 48, 96), index=1, key=f"{key}_per_page")
    start = (int(page) - 1) * per_page
    rows = shown.subset(torch.arange(start, min(start + per_page, len(shown))))
    ids = forget_ids(name)
    scale = pixel_scale(rows.x)
    st.html(TILE_CSS)
    for row_start in range(0, len(rows), GALLERY_COLUMNS):
        cols = st.columns(GALLERY_COLUMNS)
        for col, i in zip(cols, range(row_start, min(row_start + GALLERY_COLUMNS, len(rows)))):
            sample_id = int(rows.ids[i])
            widget = f"pick::{name}::{sample_id}"
            st.session_state[widget] = sample_id in ids  # the forget set is the truth; boxes mirror it
            caption = f"#{sample_id}"
            if data.labels is not None and data.class_names:
                caption += f" · {data.class_names[int(rows.labels[i])]}"
            if data.identities is not None:
                caption += f" · person {int(rows.identities[i])}"
            tile = to_uint8_rgb(rows.x[i], scale)
            if sample_id in ids:
                tile = framed(tile)
            with col.container(key=f"tile-{key}-{sample_id}", gap=None):
                st.image(tile, width="stretch")
                st.checkbox(caption, key=widget, on_change=_toggle, args=(name, sample_id, widget),
                            help=None)


@st.cache_data(show_spinner="Projecting the dataset...", max_entries=8)
def _projection(data_name: str, split: str, method: str, _features: np.ndarray) -> np.ndarray:
    return project(_features, method, key=f"{data_name}-{split}")


def _add_lasso(name: str, widget: str) -> None:
    event = st.session_state.get(widget) or {}
    picked = selected_ids(event.get("selection"))
    forget_ids(name).update(picked)
    if picked:
        st.toast(f"Added {len(picked)} samples from the embedding")


def embedding_view(data: ImageData, shown_mask: torch.Tensor, name: str, key: str) -> None:
    """Scatter of a 2-D projection; a lasso, box or click adds the points it catches to the forget set."""
    method = st.radio("Projection", ("pca", "umap"), key=f"{key}_projection", horizontal=True,
                      format_func=lambda m: {"pca": "PCA (instant)", "umap": "UMAP (slow the first time)"}[m])
    coords = _projection(name, data.split, method, features_of(data.x))
    rows = torch.nonzero(shown_mask).flatten().numpy()
    widget = f"{key}_embedding"
    st.caption("Draw a lasso or a box around points to add them to the forget set: pick the tool in the toolbar at "
               "the plot's top right (lasso is on by default).")
    axes = {"pca": ("PC 1", "PC 2"), "umap": ("UMAP 1", "UMAP 2")}[method]
    st.plotly_chart(
        embedding_figure(coords[rows], data.ids.numpy()[rows], None if data.labels is None else data.labels.numpy()[rows],
                         data.class_names, selected=forget_ids(name), axis_names=axes),
        key=widget, on_select=lambda: _add_lasso(name, widget), selection_mode=("points", "box", "lasso"),
        width="stretch", config={"displayModeBar": True},
    )


def _saved_ids(data: ImageData, name: str) -> list[int]:
    """Ids of `data` that the saved selection `name` picks (none if it matches nothing)."""
    try:
        return data.ids[select(data, load_selection(name))].tolist()
    except EmptySelection:
        return []


def _load_saved(data: ImageData, widget: str) -> None:
    chosen = st.session_state.get(widget)
    if chosen:
        ids = _saved_ids(data, chosen)
        _set_forget_ids(data.name, ids)
        _set_origin(data.name, chosen, ids)


def _set_origin(name: str, saved: str | None, ids) -> None:
    """Remember which saved set the builder last matched (loaded or saved), to mark unsaved changes."""
    st.session_state[f"forget_origin::{name}"] = (saved, frozenset(int(i) for i in ids))


def unsaved_note(name: str, ids: set[int]) -> str:
    """'' when the builder equals the saved set it came from (or is empty and new); else what differs."""
    saved, was = st.session_state.get(f"forget_origin::{name}", (None, frozenset()))
    if ids == set(was):
        return ""
    if saved is None:
        return "not saved yet"
    return f"unsaved changes to '{saved}' ({len(ids - was)} added, {len(was - ids)} removed)"


def _delete_saved(widget: str) -> None:
    chosen = st.session_state.get(widget)
    if chosen:
        delete_selection(chosen)
        st.toast(f"Deleted the saved forget set {chosen!r}")


def _rename_saved(widget: str, new_widget: str) -> None:
    old, new = st.session_state.get(widget), (st.session_state.get(new_widget) or "").strip()
    if not old:
        return
    if not new or new == old:
        st.session_state["_forget_set_error"] = LetheError("Type the new name first.", "e.g. digit-seven-v2.")
        return
    if new in list_selections():
        st.session_state["_forget_set_error"] = LetheError(f"A saved set is already called {new!r}.",
                                                           "Pick another name, or delete that set first.")
        return
    try:
        save_selection(new, load_selection(old))
        delete_selection(old)
        st.session_state[widget] = new
        st.toast(f"Renamed {old!r} to {new!r}")
    except LetheError as exc:
        st.session_state["_forget_set_error"] = exc


def _save(data: ImageData, ids: set[int], rule: Selection | None, widget: str) -> None:
    label = st.session_state.get(widget, "").strip()
    if not label:
        raise LetheError("The forget set needs a name before it can be saved.", "Type a name, e.g. digit-seven.")
    if not ids:
        raise LetheError("The forget set is empty.", "Click images, lasso points or add the filtered samples first.")
    description = f"{len(ids)} samples picked in the builder" + (f" (filter: {rule.describe()})" if rule else "")
    save_selection(label, Selection(data.name, data.split, ids=sorted(ids)), description)
    _set_origin(data.name, label, ids)
    st.success(f"Saved {label!r}: {len(ids)} samples of {data.name}/{data.split}.")


def _preview_strip(data: ImageData, ids, limit: int, ncol: int, caption: str = "") -> None:
    chosen = data.subset(torch.isin(data.ids, torch.tensor(sorted(ids), dtype=data.ids.dtype)))
    if len(chosen) and data.is_image:
        st.image(image_grid(chosen.x[:limit], ncol=ncol, scale=max(1, pixel_scale(chosen.x) // 2)),
                 caption=caption or f"first {min(limit, len(chosen))} of {len(chosen)} in the forget set")


def saved_sets(data: ImageData) -> list[tuple[str, int, str]]:
    """(name, size on this data, description) of every saved selection made for this dataset."""
    out = []
    for name in list_selections():
        with guarded():
            sel = load_selection(name)
            if sel.dataset == data.name:
                out.append((name, len(_saved_ids(data, name)), sel.describe()))
    return out


def forget_set_panel(data: ImageData, shown_mask: torch.Tensor, rule: Selection | None, key: str) -> None:
    """Size, bulk actions, save under a name, a preview; then the saved sets of this dataset (reloadable)."""
    name = data.name
    ids = forget_ids(name)
    filtered = set(data.ids[shown_mask].tolist())
    size, actions, save = st.columns([2, 5, 5], vertical_alignment="bottom")
    note = unsaved_note(name, ids)
    size.metric("Forget set size", f"{len(ids):,}", help=f"of {len(data):,} training samples of {name}")
    if note:
        size.markdown(f":orange-badge[:material/edit: {note}]")
    buttons = actions.columns(3)
    add_why = ("Set a filter first (label, attribute or identity): without one, 'shown' is the whole dataset."
               if rule is None else "No sample matches the filters." if not filtered
               else "Add every sample the filters show.")
    buttons[0].button("Add shown", key=f"{key}_add_filtered", disabled=rule is None or not filtered, width="stretch",
                      on_click=lambda: forget_ids(name).update(filtered), help=add_why)
    buttons[1].button("Drop shown", key=f"{key}_remove_filtered", disabled=not (ids & filtered), width="stretch",
                      on_click=lambda: forget_ids(name).difference_update(filtered),
                      help="Remove every sample the filters show." if ids & filtered
                      else "None of the shown samples is in the forget set.")
    buttons[2].button("Clear", key=f"{key}_clear", disabled=not ids, width="stretch",
                      on_click=lambda: _set_forget_ids(name, ()),
                      help="Empty the forget set." if ids else "The forget set is already empty.")
    if rule is None and not ids:
        actions.caption("Add shown needs a filter; or tick images below, or lasso points in the embedding.")
    widget = f"{key}_save_name"
    name_col, button_col = save.columns([3, 2], vertical_alignment="bottom")
    name_col.text_input("Name", key=widget, placeholder="e.g. digit-seven")
    if button_col.button("Save forget set", key=f"{key}_save", icon=":material/save:", width="stretch"):
        with guarded():
            _save(data, ids, rule, widget)
    _preview_strip(data, ids, limit=30, ncol=30)
    saved = saved_sets(data)
    with st.expander(f"Saved forget sets of {name} ({len(saved)})", icon=":material/bookmarks:"):
        if not saved:
            st.caption("None yet: build a set and save it under a name.")
            return
        table, pick_col = st.columns([3, 2])
        table.dataframe(pd.DataFrame(saved, columns=["name", "size", "selects"]), hide_index=True, width="stretch")
        pick = f"{key}_load_name"
        chosen = pick_col.selectbox("Saved set", [s[0] for s in saved], key=pick)
        pick_col.button("Load into the builder", key=f"{key}_load", on_click=_load_saved, args=(data, pick),
                        icon=":material/upload:", help="Replaces the forget set being built.")
        rename_col, rename_button, delete_button = pick_col.columns([3, 2, 2], vertical_alignment="bottom")
        rename_col.text_input("New name", key=f"{key}_rename_to", placeholder="new name")
        rename_button.button("Rename", key=f"{key}_rename", on_click=_rename_saved, args=(pick, f"{key}_rename_to"),
                             icon=":material/edit:", width="stretch")
        delete_button.button("Delete", key=f"{key}_delete", on_click=_delete_saved, args=(pick,),
                             icon=":material/delete:", width="stretch", help=f"Delete the saved set {chosen!r}.")
        error = st.session_state.pop("_forget_set_error", None)
        if error is not None:
            show_error(error)
        with pick_col:
            _preview_strip(data, _saved_ids(data, chosen), limit=20, ncol=10, caption=f"preview of {chosen}")


def forget_set_builder(data: ImageData, key: str = "builder") -> set[int]:
    """The whole builder for one dataset split; returns the ids in the forget set."""
    name = data.name
    mask, rule = filter_mask(data, key)
    with st.container(border=True):
        forget_set_panel(data, mask, rule, key)
    shown = data.subset(mask)
    views = ["Gallery", "Embedding"] if data.is_image else ["Embedding"]
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    view = left.segmented_control("View", views, default=views[0], key=f"{key}_view") or views[0]
    right.caption(f"{len(shown)} of {len(data)} samples match the filters" + (f" ({rule.describe()})" if rule else ""))
    if len(shown) == 0:
        st.warning("No sample matches the filters; loosen them to see images.")
    elif view == "Embedding":
        embedding_view(data, mask, name, key)
    else:
        gallery(data, shown, name, key)
    return forget_ids(name)
