"""Data & forget sets: browse a model's training data and build named forget sets by clicking, filtering and
lassoing (the builder lives in `pages/_forget_set.py`, shared with the method pages)."""

import streamlit as st

from core.data import DATASETS
from pages._common import active_model, dataset, guarded, model_dataset, require_app_shell
from pages._forget_set import forget_set_builder

require_app_shell()


def main() -> None:
    st.title("Data & forget sets")
    st.caption("Pick the training samples a model should forget. Click images, filter, or lasso points in the "
               "embedding; save the set under a name and every method can use it.")
    bundle = active_model() if st.session_state.get("model_spec") else None
    default = model_dataset(bundle) if bundle is not None else None
    options = list(DATASETS) if default in DATASETS or default is None else [default, *DATASETS]
    if st.session_state.get("data_model_default") != default or st.session_state.get("data_name") not in options:
        st.session_state["data_name"] = default or options[0]  # follow the sidebar's model when it changes
        st.session_state["data_model_default"] = default
    pick, about = st.columns([1, 2], vertical_alignment="bottom")
    name = pick.selectbox("Dataset (training split)", options, key="data_name",
                          help="Defaults to the data the model in the sidebar was trained on.")
    about.caption(DATASETS.get(name, ""))
    data = dataset(name, "train")
    forget_set_builder(data, key="data")


with guarded():
    main()
