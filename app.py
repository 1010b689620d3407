"""Lethe workbench: `make app` (or `streamlit run app.py`) serves it.

This file only defines the navigation and the shared sidebar; each page lives in `pages/` and calls `core`.
"""

import streamlit as st

from pages._common import run_store_caption, sidebar

st.set_page_config(page_title="Lethe", page_icon=":material/blur_on:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/explore.py", title="Explore", icon=":material/image_search:"),
    st.Page("pages/data.py", title="Data & forget sets", icon=":material/photo_library:"),
    st.Page("pages/redact.py", title="Redact", icon=":material/hide_image:"),
    st.Page("pages/tame.py", title="Tame", icon=":material/tune:"),
    st.Page("pages/influence.py", title="Influence", icon=":material/insights:"),
    st.Page("pages/gold.py", title="GOLD", icon=":material/workspace_premium:"),
    st.Page("pages/unlearn.py", title="Unlearn", icon=":material/auto_fix_off:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:"),
]

navigation = st.navigation(PAGES, position="top")  # see .streamlit/config.toml: never the raw file names
sidebar()
navigation.run()
run_store_caption()
