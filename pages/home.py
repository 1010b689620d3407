"""Overview: what Lethe does, the zoo with the quality each model measured, and a glimpse of each model."""

import pandas as pd
import streamlit as st

from core.viz.samples import preview
from core.zoo.registry import ZOO
from pages._common import dataset, device_name, guarded, pretrained, shipped_zoo, show_preview

st.title("Lethe")
st.markdown(
    "Make pretrained generative models **forget**: pick a model in the sidebar, look at its samples in "
    "**Explore**, click or lasso the training images it should forget in **Data & forget sets**, and watch "
    "every job in **Runs**."
)
cols = st.columns(3)
cols[0].page_link("pages/explore.py", label="Explore a model", icon=":material/image_search:")
cols[1].page_link("pages/data.py", label="Build a forget set", icon=":material/photo_library:")
cols[2].page_link("pages/runs.py", label="Watch runs", icon=":material/monitoring:")

st.subheader("Model zoo")
shipped = set(shipped_zoo())
rows = []
for name, entry in ZOO.items():
    row = {"model": name, "family": entry.family, "data": entry.dataset, "shipped": name in shipped,
           "description": entry.description}
    if name in shipped:
        with guarded():
            card = pretrained(name, device_name()).card
            row["measured"] = ", ".join(f"{k} {v:.3g}" for k, v in card.metrics.items())
            row["floors met"] = not card.floor_failures()
    rows.append(row)
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("A glimpse of each shipped model")
for name in sorted(shipped):
    with guarded():
        bundle = pretrained(name, device_name())
        data_name = bundle.card.data.get("dataset")
        held_out = dataset(data_name, "test") if bundle.family in ("classifier", "i2i") else None
        st.markdown(f"**{name}** · {ZOO[name].description}")
        show_preview(preview(bundle, n=12, seed=0, data=held_out, n_points=1000), ncol=12, compact=True)
