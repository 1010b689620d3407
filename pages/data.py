"""Data & forget sets: browse a model's training data and build named forget sets by clicking, filtering and
lassoing (the builder lives in `pages/_forget_set.py`, shared with the method pages). The user's own images (a
folder path, or an uploaded zip of one) become the data every method page uses, as `--data` does on the command
line."""

import streamlit as st

from core.data import DATASETS
from core.data.uploads import save_data_upload
from pages._common import active_model, dataset, guarded, model_dataset, require_app_shell
from pages._forget_set import forget_set_builder

require_app_shell()


def _use_data(spec: str) -> None:
    """Make `spec` the data of every method page (the sidebar's "Training data" box); a widget callback, so the
    sidebar's box can still be changed in this rerun."""
    st.session_state["pick_data"] = spec


def own_data_panel() -> None:
    """A folder path or an uploaded zip of images (flat, or one sub-folder per class) as the training data."""
    with st.expander("Use your own images", icon=":material/upload_file:",
                     expanded=not st.session_state.get("pick_data")):
        st.caption("A folder of images (one sub-folder per class, as torchvision's ImageFolder reads it, or flat), a "
                   "zip of one, or an .npz with `images` and optional `labels`, `attributes` (+ `attribute_names`), "
                   "`identities`. Images are resized to the model's size; the methods and the forget-set builder "
                   "then work on them.")
        path_col, go_col = st.columns([4, 1], vertical_alignment="bottom")
        path = path_col.text_input("Folder, .zip or .npz on the server", key="data_own_path")
        go_col.button("Use", key="data_own_use", disabled=not path.strip(), on_click=_use_data,
                      args=(path.strip(),), width="stretch")
        upload = st.file_uploader("Or upload a zip of your images (or an .npz)", type=["zip", "npz"], key="data_own_upload")
        if upload is not None:
            with guarded():
                saved = save_data_upload(upload.name, upload.getvalue())
                st.button(f"Use {upload.name}", key="data_own_use_upload", on_click=_use_data, args=(str(saved),),
                          type="primary")


def main() -> None:
    st.title("Data & forget sets")
    st.caption("Pick the training samples a model should forget. Click images, filter, or lasso points in the "
               "embedding; save the set under a name and every method can use it.")
    own_data_panel()
    bundle = active_model() if st.session_state.get("model_spec") else None
    default = model_dataset(bundle) if bundle is not None else None
    options = list(DATASETS) if default in DATASETS or default is None else [default, *DATASETS]
    if st.session_state.get("data_model_default") != default or st.session_state.get("data_name") not in options:
        st.session_state["data_name"] = default or options[0]  # follow the sidebar's model when it changes
        st.session_state["data_model_default"] = default
    pick, about = st.columns([1, 2], vertical_alignment="bottom")
    name = pick.selectbox("Dataset (training split)", options, key="data_name",
                          help="Defaults to the data the model in the sidebar was trained on.")
    about.caption(DATASETS.get(name, "Your own images, resized to the model's size."))
    data = dataset(name, "train")
    forget_set_builder(data, key="data")


with guarded():
    main()
