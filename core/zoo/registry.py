"""The model zoo: named pretrained models, the recipe that trains each, and the floor its quality must meet.

Shipped weights live in `assets/zoo/<name>/` (model.safetensors + card.json). `python -m core zoo train NAME`
runs the entry's recipe and overwrites that folder; CI never retrains, it runs every recipe in smoke mode and
re-measures the shipped weights against their floors.

A recipe is `train(seed, device, progress, cancel, smoke) -> Bundle` returning a bundle whose card carries the
hyperparameters, data, training time and measured metrics. An evaluator is `evaluate(bundle, device) -> dict`
computing the metrics the floors name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ASSETS = Path(__file__).resolve().parents[2] / "assets"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    family: str
    dataset: str
    description: str
    recipe: str  # "module:function" of the training recipe
    evaluator: str  # "module:function" measuring the card's metrics
    floors: dict[str, tuple[str, float]]  # metric -> (">=" | "<=", bound), asserted by tests on shipped weights
    needs: tuple[str, ...] = ()  # zoo models the recipe or evaluator uses (trained first)

    def _resolve(self, path: str) -> Callable:
        module, _, fn = path.partition(":")
        return getattr(importlib.import_module(module), fn)

    @property
    def train(self) -> Callable:
        return self._resolve(self.recipe)

    @property
    def evaluate(self) -> Callable:
        return self._resolve(self.evaluator)


def zoo_folder(name: str) -> Path:
    return ASSETS / "zoo" / name


_ENTRIES = [
    # Classifiers first: the generative models' metrics are computed with them.
    ZooEntry("mnist-lenet", "classifier", "mnist", "LeNet-5 digit classifier; Lethe's IS/FID/invalidity judge for MNIST.",
             "core.zoo.classifiers:train_mnist_lenet", "core.zoo.classifiers:evaluate_mnist_lenet",
             {"accuracy": (">=", 0.97), "accuracy[degraded]": (">=", 0.95)}),
    ZooEntry("fashion-lenet", "classifier", "fashion-mnist", "LeNet-5 on the full Fashion-MNIST.",
             "core.zoo.classifiers:train_fashion_lenet", "core.zoo.classifiers:evaluate_fashion_lenet",
             {"accuracy": (">=", 0.88), "accuracy[degraded]": (">=", 0.83)}),
    ZooEntry("synthfaces-attributes", "classifier", "synthfaces", "Multi-label CNN for the synthfaces attributes.",
             "core.zoo.classifiers:train_synthfaces_attributes", "core.zoo.classifiers:evaluate_synthfaces_attributes",
             {"mean_attribute_accuracy": (">=", 0.95), "mean_attribute_accuracy[degraded]": (">=", 0.92)}),
    ZooEntry("synthfaces-identity", "classifier", "synthfaces", "Identity embedding for synthfaces (nearest identities).",
             "core.zoo.classifiers:train_synthfaces_identity", "core.zoo.classifiers:evaluate_synthfaces_identity",
             {"identity_accuracy": (">=", 0.95), "identity_accuracy[degraded]": (">=", 0.88)}),
    # GANs
    ZooEntry("mnist-dcgan", "gan", "mnist", "DCGAN, latent 128, label smoothing 0.9/0.1 (redaction paper, App. D).",
             "core.zoo.gans:train_mnist_dcgan", "core.zoo.gans:evaluate_mnist_dcgan",
             {"IS[mnist-lenet]": (">=", 7.5), "min_class_share": (">=", 0.05), "max_class_share": ("<=", 0.15)},
             needs=("mnist-lenet",)),
    ZooEntry("synthfaces-dcgan", "gan", "synthfaces",
             "Unconditional DCGAN on synthfaces 32x32, latent 128, label smoothing 0.9/0.1 (redaction paper, App. D); "
             "redact attribute expressions such as `glasses & ~smile`.",
             "core.zoo.gans:train_synthfaces_dcgan", "core.zoo.gans:evaluate_synthfaces_dcgan",
             {"FID[synthfaces-attributes]": ("<=", 80.0), "max_attribute_share_gap": ("<=", 0.25),
              "min_attribute_share_ratio": (">=", 0.5)},
             needs=("synthfaces-attributes",)),
    ZooEntry("toy-gan", "gan", "gaussian2d", "FCGAN on the correlated 2-D Gaussian (influence paper).",
             "core.zoo.gans:train_toy_gan", "core.zoo.gans:evaluate_toy_gan",
             {"kde_loglik": (">=", -2.95), "mean_error": ("<=", 0.25), "cov_error": ("<=", 0.4)}),
    ZooEntry("influence-fcgan", "gan", "gaussian2d",
             "The influence paper's FCGAN: float64, plain SGD lr 1e-3, batch 100, gamma 1e-3, 50 epochs (App. C).",
             "core.zoo.influence_models:train_influence_fcgan", "core.zoo.gans:evaluate_toy_gan",
             {"kde_loglik": (">=", -2.9), "mean_error": ("<=", 0.4), "cov_error": ("<=", 2.0)}),
    ZooEntry("influence-dcgan", "gan", "mnist",
             "The influence paper's MNIST DCGAN (z 32) trained by plain SGD, batch 100, gamma 1e-3 (App. C).",
             "core.zoo.influence_models:train_influence_dcgan", "core.zoo.influence_models:evaluate_influence_dcgan",
             {"IS[mnist-lenet]": (">=", 5.0), "FID[mnist-lenet]": ("<=", 120.0)},
             needs=("mnist-lenet",)),
    ZooEntry("mnist-acgan", "gan", "mnist", "Conditional GAN with auxiliary classifier and spectral norm (GOLD paper).",
             "core.zoo.gans:train_mnist_acgan", "core.zoo.gans:evaluate_mnist_acgan",
             {"label_accuracy[mnist-lenet]": (">=", 0.90), "IS[mnist-lenet]": (">=", 8.0)},
             needs=("mnist-lenet",)),
    ZooEntry("fashion-acgan", "gan", "fashion-mnist",
             "Conditional GAN with auxiliary classifier and spectral norm on Fashion-MNIST (GOLD paper's FMNIST).",
             "core.zoo.gans:train_fashion_acgan", "core.zoo.gans:evaluate_fashion_acgan",
             {"label_accuracy[fashion-lenet]": (">=", 0.88), "IS[fashion-lenet]": (">=", 6.5)},
             needs=("fashion-lenet",)),
    ZooEntry("toy-acgan", "gan", "clusters6", "Conditional ACGAN on six binary-labelled Gaussian clusters.",
             "core.zoo.gans:train_toy_acgan", "core.zoo.gans:evaluate_toy_acgan",
             {"label_accuracy": (">=", 0.90), "min_cluster_share": (">=", 0.10)}),
    # Flows
    ZooEntry("toy-flow", "flow", "ring5", "RealNVP on the ring of five Gaussians.",
             "core.zoo.flows:train_toy_flow", "core.zoo.flows:evaluate_toy_flow",
             {"test_nll": ("<=", 1.6), "min_mode_share": (">=", 0.12)}),
    ZooEntry("mnist-flow", "flow", "mnist",
             "Multiscale Glow-style flow (actnorm, 1x1 conv, affine coupling, learned split prior) "
             "on MNIST, 5-bit data (bits/dim on 5-bit data).",
             "core.zoo.flows:train_mnist_flow", "core.zoo.flows:evaluate_mnist_flow",
             {"test_bpd": ("<=", 1.0), "sample_finite_fraction": (">=", 1.0), "sample_mean_gap": ("<=", 0.15)}),
    ZooEntry("synthfaces-flow", "flow", "synthfaces",
             "Multiscale Glow-style flow (actnorm, 1x1 conv, affine coupling, learned split prior) "
             "on synthfaces 32x32, 5-bit data (bits/dim on 5-bit data).",
             "core.zoo.flows:train_synthfaces_flow", "core.zoo.flows:evaluate_synthfaces_flow",
             {"test_bpd": ("<=", 2.0), "sample_finite_fraction": (">=", 1.0), "sample_mean_gap": ("<=", 0.1)}),
    # Image-to-image
    ZooEntry("mnist-i2i", "i2i", "mnist", "Encoder-decoder inpainting model on MNIST (four degradations).",
             "core.zoo.i2i:train_mnist_i2i", "core.zoo.i2i:evaluate_mnist_i2i",
             {"psnr": (">=", 18.0)}),
    ZooEntry("synthfaces-i2i", "i2i", "synthfaces", "Encoder-decoder inpainting model on synthfaces.",
             "core.zoo.i2i:train_synthfaces_i2i", "core.zoo.i2i:evaluate_synthfaces_i2i",
             {"psnr": (">=", 21.0)}),
]

ZOO: dict[str, ZooEntry] = {entry.name: entry for entry in _ENTRIES}
