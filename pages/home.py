"""Overview: what Lethe does, the zoo with the quality each model measured, and a glimpse of each model."""

import pandas as pd
import streamlit as st

from core.viz.samples import preview
from core.models.card import ModelCard
from core.zoo.registry import ZOO, zoo_folder
from pages._common import dataset, device_name, guarded, pretrained, require_app_shell, shipped_zoo, show_preview

require_app_shell()

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
    row = {"model": name, "family": entry.family, "data": entry.dataset, "quality measured at training": None,
           "floors met": None, "description": entry.description}
    if name in shipped:
        with guarded():
            card = ModelCard.read(zoo_folder(name) / "card.json")
            shown = [k for k in card.floors if k in card.metrics] or list(card.metrics)[:3]
            row["quality measured at training"] = ", ".join(f"{k} {card.metrics[k]:.3g}" for k in shown)
            row["floors met"] = not card.floor_failures()
    else:
        row["quality measured at training"] = "not trained yet"
    rows.append(row)
# A static table: its text wraps, so every column fits the page (a scrolling data grid cut off the description).
table = pd.DataFrame(rows)
table["floors met"] = table["floors met"].map(lambda met: {True: "yes", False: "**no**"}.get(met, ""))
st.table(table, hide_index=True, border="horizontal")

st.subheader("Samples of each generative model")
st.caption("Fixed latents (seed 0). Image-to-image models and classifiers need held-out data: see them in Explore.")
generative = [name for name in ZOO if name in shipped and ZOO[name].family in ("gan", "flow")]
if not generative:
    st.info("No generative model is shipped yet; train one with `python -m core zoo train mnist-dcgan`.")
columns = st.columns(2, gap="large")
for i, name in enumerate(generative):
    with columns[i % 2], guarded():
        bundle = pretrained(name, device_name())
        st.markdown(f"**{name}** · {ZOO[name].description}")
        data_name = bundle.card.data.get("dataset")
        reference = dataset(data_name, "train") if len(bundle.data_shape) == 1 and data_name else None
        show_preview(preview(bundle, n=12, seed=0, n_points=1000), ncol=6, compact=True, reference=reference,
                     label_names=tuple(reference.class_names) if reference else (), key=f"home_{name}")
