"""The GAN game as pure functions of the parameters: the joint gradient g of eq. (3) and its Jacobian (eq. 4).

Influence estimation differentiates the training step itself, so G and D are called through
`torch.func.functional_call` with explicit parameter tensors instead of their own `nn.Parameter`s. A `Game`
holds private float64 (by default) copies of the two players, so the bundle it came from is never touched.

Losses (influence paper, eq. 2, with the non-saturating generator loss of App. C):

    f_G(z; theta)       = -log sigmoid(D(G(z)))             = softplus(-D(G(z)))
    f_D^[z](z; theta)   = -log(1 - sigmoid(D(G(z))))        = softplus(D(G(z)))
    f_D^[x](x; theta)   = -log sigmoid(D(x))                = softplus(-D(x))

    L_G(Z; theta)    = 1/|Z| sum_z f_G + gamma/2 |theta_G|^2
    L_D(S, Z; theta) = 1/|Z| (sum_z f_D^[z] + sum_{i in S} w_i f_D^[x](x_i)) + gamma/2 |theta_D|^2

The per-instance weights w (1 for every instance of a normal step) are how counterfactual ASGD drops an
instance (w_j = 0, the normaliser stays 1/|Z| exactly as in the paper's g(S \\ {j}, Z; theta)), and how the
inference phase gets every per-instance term of eq. (8) from the same double-backward pass: d/dw_j of
eta_D <u_D, grad_theta_D L_D> is eta_D / |Z| <u_D, grad_theta_D f_D^[x](x_j)>.

Buffers that change while training (spectral-norm u/v, batch-norm running statistics) are part of the state a
step needs: they are passed to `functional_call` and updated there in place, exactly as the module's own
forward would. The Jacobian treats them as constants, as PyTorch's spectral norm does (its power iteration runs
without gradient).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from core.errors import LetheError
from core.models.bundles import GANBundle, from_unit, to_unit

Tensors = list[torch.Tensor]


@dataclass
class Player:
    """One network with its parameter and buffer names, called as a pure function of given tensors."""

    module: nn.Module
    param_names: list[str]
    buffer_names: list[str]

    @classmethod
    def of(cls, module: nn.Module) -> "Player":
        return cls(module, [n for n, _ in module.named_parameters()], [n for n, _ in module.named_buffers()])

    def params(self) -> Tensors:
        return [p.detach().clone() for p in self.module.parameters()]

    def buffers(self) -> Tensors:
        return [b.detach().clone() for b in self.module.buffers()]

    def __call__(self, params: Tensors, buffers: Tensors, x: torch.Tensor) -> torch.Tensor:
        tensors = dict(zip(self.param_names, params))
        tensors.update(zip(self.buffer_names, buffers))
        return functional_call(self.module, tensors, (x,))


@dataclass
class State:
    """theta = (theta_G, theta_D) and the buffers that go with it: everything step t needs to recompute step t."""

    g: Tensors
    d: Tensors
    g_buffers: Tensors
    d_buffers: Tensors

    def clone(self) -> "State":
        return State(*[[t.detach().clone() for t in part] for part in (self.g, self.d, self.g_buffers, self.d_buffers)])

    def flat(self) -> torch.Tensor:
        """One vector (params G, params D, buffers G, buffers D) in float64, for the trace log on disk."""
        parts = [t.reshape(-1).double() for part in (self.g, self.d, self.g_buffers, self.d_buffers) for t in part]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)

    def finite(self) -> torch.Tensor:
        """True (a 0-d tensor on the state's device) when every parameter is finite: read it when you must."""
        return torch.stack([torch.isfinite(t).all() for t in (*self.g, *self.d)]).all()

    def is_finite(self) -> bool:
        """`finite()` read back to the host (one read, a device sync on a GPU)."""
        return bool(self.finite())


def _norm2(tensors: Tensors) -> torch.Tensor:
    return sum((t * t).sum() for t in tensors)


class Game:
    """The two players of a GAN bundle as pure functions, in `dtype`, with the paper's losses (module docstring).

    `pixel_range` converts dataset values in [0, 1] to what D reads, as the zoo's training loops do."""

    def __init__(self, bundle: GANBundle, dtype: torch.dtype = torch.float64, weight_decay: float = 0.0) -> None:
        check_traceable(bundle)
        self.latent_dim = bundle.latent_dim
        self.latent_shape = bundle.latent_shape  # G's own latent shape, e.g. (nz, 1, 1) for the usual DCGAN
        self.pixel_range = bundle.pixel_range
        self.device = bundle.device
        self.dtype = dtype
        self.weight_decay = weight_decay
        self.G = Player.of(copy.deepcopy(bundle.generator).to(dtype).train())
        self.D = Player.of(copy.deepcopy(bundle.discriminator).to(dtype).train())
        self._templates = [t for part in self.initial_state().__dict__.values() for t in part]

    # -------------------------------------------------------------------------------- state and its flat form

    def initial_state(self) -> State:
        """theta[1]: the bundle's weights, cast to the game's dtype."""
        return State(self.G.params(), self.D.params(), self.G.buffers(), self.D.buffers())

    @property
    def sizes(self) -> tuple[int, int]:
        """(d_G, d_D): number of parameters of each player."""
        s = self.initial_state()
        return sum(t.numel() for t in s.g), sum(t.numel() for t in s.d)

    def unflat(self, vector: torch.Tensor) -> State:
        """Inverse of `State.flat` (tensors get their template's dtype, shape and the game's device). Each tensor
        is its own copy, never a view of `vector`: a batch-norm forward updates its running statistics in place,
        which would bump the version of every view of the same storage and void the parameters' autograd graph."""
        out, start = [], 0
        for t in self._templates:
            out.append(vector[start : start + t.numel()].reshape(t.shape).to(t.dtype).to(self.device).clone())
            start += t.numel()
        n = [len(self.G.param_names), len(self.D.param_names), len(self.G.buffer_names), len(self.D.buffer_names)]
        cuts = [0, n[0], n[0] + n[1], n[0] + n[1] + n[2], sum(n)]
        return State(*[out[cuts[i] : cuts[i + 1]] for i in range(4)])

    def data(self, x_unit: torch.Tensor) -> torch.Tensor:
        """Dataset values in [0, 1] (or raw 2-D points) as D reads them, in the game's dtype and device."""
        return from_unit(x_unit, self.pixel_range).to(self.device, self.dtype)

    def generate(self, state: State, z: torch.Tensor) -> torch.Tensor:
        """G(z; theta_G) for latents stored as (N, latent_dim), reshaped to G's `latent_shape` as the bundle does."""
        if self.latent_shape is not None:
            z = z.reshape(len(z), *self.latent_shape)
        return self.G(state.g, state.g_buffers, z)

    def samples(self, state: State, z: torch.Tensor, train: bool = False) -> torch.Tensor:
        """G(z; theta_G) in [0, 1] (raw values for 2-D data); eval mode unless `train` (the mode samples use)."""
        self.G.module.train(train)
        try:
            return to_unit(self.generate(state, z.to(self.device, self.dtype)), self.pixel_range)
        finally:
            self.G.module.train()

    # ------------------------------------------------------------------------------------ the joint gradient

    def losses(self, state: State, x: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_G(Z; theta), L_D(S, Z; theta)) of the module docstring for real batch x (D's scale), latents z and
        per-instance weights w."""
        fake = self.generate(state, z)
        logit_fake = self.D(state.d, state.d_buffers, fake).reshape(-1)
        logit_real = self.D(state.d, state.d_buffers, x).reshape(-1)
        loss_g = F.softplus(-logit_fake).mean()
        loss_d = (F.softplus(logit_fake).sum() + (w * F.softplus(-logit_real)).sum()) / len(z)
        if self.weight_decay:
            loss_g = loss_g + 0.5 * self.weight_decay * _norm2(state.g)
            loss_d = loss_d + 0.5 * self.weight_decay * _norm2(state.d)
        return loss_g, loss_d

    def gradient(self, state: State, x: torch.Tensor, z: torch.Tensor, w: torch.Tensor,
                 create_graph: bool = False) -> tuple[Tensors, Tensors, torch.Tensor]:
        """g(S, Z; theta) of eq. (3) as (grad_theta_G L_G, grad_theta_D L_D) and the two loss values (L_G, L_D) as
        one detached tensor on the game's device: reading them is the caller's choice (a device sync on a GPU)."""
        for t in (*state.g, *state.d):
            t.requires_grad_(True)
        loss_g, loss_d = self.losses(state, x, z, w)
        grad_g = torch.autograd.grad(loss_g, state.g, create_graph=create_graph, retain_graph=True)
        grad_d = torch.autograd.grad(loss_d, state.d, create_graph=create_graph)
        return list(grad_g), list(grad_d), torch.stack([loss_g.detach(), loss_d.detach()])

    def step(self, state: State, x: torch.Tensor, z: torch.Tensor, w: torch.Tensor, lr_g: float,
             lr_d: float) -> tuple[State, torch.Tensor]:
        """One ASGD step, theta[t+1] = theta[t] - B_t g(S_t, Z_t; theta[t]) (eq. 3); buffers move as in training.
        Returns the new state and theta[t]'s losses (L_G, L_D) as a device tensor (`gradient`)."""
        work = State(state.g, state.d, [b.clone() for b in state.g_buffers], [b.clone() for b in state.d_buffers])
        grad_g, grad_d, losses = self.gradient(work, x, z, w)
        with torch.no_grad():
            new = State([p - lr_g * g for p, g in zip(state.g, grad_g)], [p - lr_d * g for p, g in zip(state.d, grad_d)],
                        work.g_buffers, work.d_buffers)
        return new, losses

    def backward_step(self, state: State, x: torch.Tensor, z: torch.Tensor, u_g: Tensors, u_d: Tensors,
                      lr_g: float, lr_d: float) -> tuple[Tensors, Tensors, torch.Tensor]:
        """One step of Algorithm 2 at theta[t]: returns (u^T B_t J_t split into G and D parts, per-instance terms).

        u^T B_t J_t = grad_theta <B_t u, g(theta)> (App. A: "we need only to compute the derivative of the inner
        product of u_t and the joint gradient vector"), by double backpropagation; the per-instance terms
        eta_D / |S_t| <u_D, grad_theta_D f_D^[x](x_j; theta[t])> (eq. 8) are its derivative with respect to the
        weights w of the same graph, so one backward pass gives both. Nothing is approximated."""
        w = torch.ones(len(x), dtype=self.dtype, device=self.device, requires_grad=True)
        grad_g, grad_d, _ = self.gradient(state, x, z, w, create_graph=True)
        inner = lr_g * sum((u * g).sum() for u, g in zip(u_g, grad_g)) + lr_d * sum(
            (u * g).sum() for u, g in zip(u_d, grad_d))
        out = torch.autograd.grad(inner, [*state.g, *state.d, w], allow_unused=True)
        n_g = len(state.g)
        fill = [torch.zeros_like(t) if o is None else o for o, t in zip(out, [*state.g, *state.d, w])]
        return fill[:n_g], fill[n_g:-1], fill[-1]

    def instance_grads(self, state: State, x: torch.Tensor) -> list[Tensors]:
        """grad_theta_D f_D^[x](x_j; theta) for each row of x, one backward per instance (the slow reference the
        batched terms of `backward_step` are tested against)."""
        out = []
        for row in x:
            params = [p.detach().requires_grad_(True) for p in state.d]
            buffers = [b.clone() for b in state.d_buffers]
            loss = F.softplus(-self.D(params, buffers, row[None]).reshape(-1)).sum()
            out.append(list(torch.autograd.grad(loss, params)))
        return out


def check_traceable(bundle: GANBundle) -> None:
    """Influence estimation needs both players of an unconditional GAN (the paper's formulation, eq. 2)."""
    if not isinstance(bundle, GANBundle):
        raise LetheError(f"influence estimation works on GANs; {bundle.card.name!r} is a {bundle.family}.",
                         "Pick a GAN: influence-fcgan, toy-gan, mnist-dcgan or synthfaces-dcgan.")
    if bundle.discriminator is None:
        raise LetheError(f"{bundle.card.name!r} has no discriminator, and the influence of a training instance "
                         "reaches the generator only through D's training steps (eq. 6).",
                         "Use a GAN saved with both players (zoo GANs ship their discriminator).")
    if bundle.conditional:
        raise LetheError(f"{bundle.card.name!r} is a conditional GAN; influence estimation follows the paper's "
                         "unconditional game (eq. 2).", "Pick an unconditional GAN such as influence-fcgan or mnist-dcgan.")


def export(game: Game, state: State, bundle: GANBundle) -> GANBundle:
    """A copy of `bundle` carrying `state`'s weights and buffers (in the bundle's own dtype), in eval mode."""
    out = bundle.copy()
    for player, module, params, buffers in ((game.G, out.generator, state.g, state.g_buffers),
                                            (game.D, out.discriminator, state.d, state.d_buffers)):
        live = dict(module.named_parameters())
        live.update(module.named_buffers())
        with torch.no_grad():
            for name, value in zip(player.param_names + player.buffer_names, [*params, *buffers]):
                live[name].copy_(value.detach().to(live[name].dtype))
    return out.eval()
