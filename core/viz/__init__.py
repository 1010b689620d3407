"""Figures and image grids as pure functions of data (no streamlit): the app and the notebooks draw the same ones.

- `images`: tiled grids, thumbnails and PNG bytes from N x C x H x W arrays in [0, 1].
- `figures`: plotly figures (scatter of toys, embeddings with selectable ids, metric curves, class shares).
- `embedding`: PCA / UMAP projections for the embedding view, cached on disk.
- `samples`: a fixed-seed preview of any bundle (samples, restorations or predictions).
"""
