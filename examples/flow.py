"""A normalizing flow built with zuko (https://github.com/probabilists/zuko), brought into Lethe: `examples.flow:build`.

Lethe's flow contract (`core.models.FlowBundle`) asks the wrapped module for `forward(x) -> (z, log|det dz/dx|)`,
`inverse(z) -> x`, `log_prob(x)` in nats per sample, and `latent_shape` (the shape of one z, for sampling). A
zuko flow is a lazy distribution: `flow()` returns a `NormalizingFlow` whose `transform` maps x to z, so the
adapter below is four one-line methods. The example models 2-D points (`n_bits=0`: a continuous density, no
dequantization) such as Lethe's `gaussian2d` toy; for images, flatten them and set `n_bits` to the data's bit
depth so bits/dim compare with Lethe's flows (see `FlowBundle`'s dequantization convention).
"""

from __future__ import annotations

from pathlib import Path

import torch
import zuko
from torch import nn

from core.models import FlowBundle, ModelCard


class ZukoFlow(nn.Module):
    """A zuko masked autoregressive flow (MAF) behind Lethe's flow contract."""

    def __init__(self, features: int, transforms: int, hidden: int) -> None:
        super().__init__()
        self.flow = zuko.flows.MAF(features=features, transforms=transforms, hidden_features=(hidden, hidden))
        self.latent_shape = (features,)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.flow().transform.call_and_ladj(x)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return self.flow().transform.inv(z)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow().log_prob(x)


def build(features: int = 2, transforms: int = 3, hidden: int = 32, data: str = "gaussian2d",
          weights: str | None = None) -> FlowBundle:
    """The flow bundle; `data` is the training data its card names; `weights` an optional state-dict file."""
    module = ZukoFlow(features, transforms, hidden)
    if weights is not None:
        module.load_state_dict(torch.load(Path(weights), map_location="cpu", weights_only=True))
    card = ModelCard(name="my-zuko-flow", family="flow", architecture="factory:examples.flow:build",
                     hparams={"features": features, "transforms": transforms, "hidden": hidden, "data": data},
                     data_shape=[features], data={"dataset": data},
                     description="A zuko MAF on 2-D points, examples/flow.py.")
    return FlowBundle(card=card, flow=module, n_bits=0)


def train(flow: FlowBundle, x: torch.Tensor, steps: int = 300, batch_size: int = 256, lr: float = 3e-3,
          seed: int = 0) -> FlowBundle:
    """Maximum likelihood on points `x` (N x features); returns `flow` in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(flow.flow.parameters(), lr=lr)
    flow.flow.train()
    for _ in range(steps):
        batch = x[torch.randint(len(x), (batch_size,), generator=gen)]
        loss = -flow.log_prob(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return flow.eval()
