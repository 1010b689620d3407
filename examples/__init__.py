"""Examples of bringing your own model to Lethe (see examples/README.md)."""
