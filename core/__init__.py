"""Lethe's engine: data, models, metrics, methods and runs for making generative models forget.

`core` is a library first: it never imports streamlit and never prints; it returns data. Pages, notebooks,
benchmarks and the command line (`python -m core`) all call the same functions.
"""

__version__ = "0.1.0"
