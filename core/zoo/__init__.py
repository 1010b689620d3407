"""Named pretrained models (see `core.zoo.registry`)."""
