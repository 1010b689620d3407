"""Zoo recipes and evaluators for the flows: `toy-flow` (RealNVP on ring5), `mnist-flow` and `synthfaces-flow`
(multiscale Glow-style flows, `core.models.flows`).

Every recipe follows the zoo contract `train_xxx(seed, device, progress, cancel, smoke) -> FlowBundle`: maximum
likelihood with Adam, a linear warm-up then cosine decay of the learning rate, gradient-norm clipping, one progress
event per epoch. Images are dequantized afresh every batch with Lethe's one convention (`FlowBundle.dequantize`:
x = (k + u) / 2^n_bits, u ~ U[0, 1)), so the training loss is exactly the evaluator's bits/dim.

The image flows model 5-bit data (n_bits = 5, k in 0..31), as in the taming paper's own setup and Glow's CelebA-HQ
runs (Glow Sec. 5): a small flow trained on 8-bit data spends its capacity on the invisible lowest bits and its
samples come out as blur, while on 5-bit data the same budget goes into shape. Their bits/dim are therefore on
5-bit data and are not comparable with 8-bit figures. They also use Glow's learned split prior (`split_prior`). The card records the
hyperparameters, training time, measured metrics, the zoo floors, and the storage dtype: float16 only when it
moves held-out bits/dim by less than 0.01, float32 otherwise.

Evaluators measure held-out quality on the dataset's test split: `test_bpd` for images (dequantized with seed 0,
`core.metrics.flow_bits_per_dim`), `test_nll` in nats for the toy, plus sample sanity checks (all samples finite,
the mean pixel of 64 samples at temperature 0.7 close to the data's, or for the toy every ring mode receiving its
share of samples).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

import core.models.flows  # noqa: F401 - registers the flow architectures built below
from core.data import load as load_data
from core.device import resolve_device
from core.errors import NonFiniteError
from core.metrics.likelihood import flow_bits_per_dim, flow_nll
from core.models.bundles import FlowBundle
from core.models.card import ModelCard
from core.models.registry import build
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.zoo.registry import ZOO

SMOKE_SIZE = 128
SMOKE_STEPS = 4
FLOAT16_BPD_TOLERANCE = 0.01
SAMPLE_TEMPERATURE = 0.7


@dataclass(frozen=True)
class FlowRecipe:
    """Architecture and optimisation of one zoo flow (chosen so training fits ~30-40 min on one CPU thread)."""

    architecture: str
    hparams: dict
    epochs: int
    batch_size: int
    lr: float
    warmup_steps: int = 200
    clip_norm: float = 50.0
    init_batch: int = 256  # images for Glow's data-dependent actnorm initialisation


RECIPES: dict[str, FlowRecipe] = {
    "toy-flow": FlowRecipe("realnvp2d", {"couplings": 16, "hidden": 64}, epochs=60, batch_size=256, lr=1e-3,
                           warmup_steps=100),
    "mnist-flow": FlowRecipe("glow", {"levels": 2, "steps": 8, "hidden": 64, "alpha": 0.05, "n_bits": 5,
                                      "split_prior": 1},
                             epochs=35, batch_size=64, lr=2e-3),
    "synthfaces-flow": FlowRecipe("glow", {"levels": 3, "steps": 4, "hidden": 64, "alpha": 0.05, "n_bits": 5,
                                           "split_prior": 1},
                                  epochs=18, batch_size=64, lr=2e-3),
}
_DATASETS = {"toy-flow": "ring5", "mnist-flow": "mnist", "synthfaces-flow": "synthfaces"}
_DEVIATIONS = {  # where a recipe departs from Glow's defaults, recorded on the card
    name: "5-bit data (bits/dim are on 5-bit data, as in the taming paper's setup), learned split prior, "
          "sigmoid-bounded affine couplings; far fewer steps, channels and epochs than Glow to fit a CPU budget"
    for name in ("mnist-flow", "synthfaces-flow")
}


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def fit_flow(
    bundle: FlowBundle,
    x: torch.Tensor,
    recipe: FlowRecipe,
    seed: int,
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
    max_steps: int | None = None,
) -> float:
    """Maximum-likelihood training of `bundle` in place on data `x` ([0, 1] images or raw points); returns seconds.

    Reports the mean training NLL per epoch (and bits/dim for images). Raises `NonFiniteError` if the loss
    diverges, rather than shipping a broken model."""
    cancel = cancel or CancelToken()
    device = bundle.device
    gen = torch.Generator().manual_seed(seed)
    flow = bundle.flow
    flow.train()
    with torch.no_grad():
        init = x[torch.randperm(len(x), generator=gen)[: recipe.init_batch]]
        flow.log_prob(bundle.dequantize(init, gen).to(device))
    opt = torch.optim.Adam(flow.parameters(), lr=recipe.lr)
    steps_per_epoch = max(1, len(x) // recipe.batch_size)
    total = recipe.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, total, recipe.warmup_steps))
    start = time.perf_counter()
    step = 0
    for epoch in range(1, recipe.epochs + 1):
        order = torch.randperm(len(x), generator=gen)
        nll_sum, seen = 0.0, 0
        for i in range(steps_per_epoch):
            cancel.raise_if_set()
            xb = bundle.dequantize(x[order[i * recipe.batch_size : (i + 1) * recipe.batch_size]], gen).to(device)
            loss = -flow.log_prob(xb).mean()
            if not torch.isfinite(loss):
                raise NonFiniteError(f"Training {bundle.card.name} diverged at epoch {epoch} (loss {loss.item()}).",
                                     "Lower the learning rate or use another seed.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), recipe.clip_norm)
            opt.step()
            sched.step()
            nll_sum += loss.item() * len(xb)
            seen += len(xb)
            step += 1
            if max_steps is not None and step >= max_steps:
                break
        metrics = {"train_nll": nll_sum / seen}
        if bundle.n_bits:
            metrics["train_bpd"] = (metrics["train_nll"] / bundle.dim + bundle.n_bits * math.log(2)) / math.log(2)
        progress(ProgressEvent(epoch, recipe.epochs, metrics, message=f"epoch {epoch}/{recipe.epochs}", stage="train"))
        if max_steps is not None and step >= max_steps:
            break
    flow.eval()
    return time.perf_counter() - start


def _float16_bpd_change(bundle: FlowBundle, x: torch.Tensor) -> float:
    """How much rounding the weights to float16 moves held-out bits/dim (decides the shipped dtype)."""
    rounded = bundle.copy()
    with torch.no_grad():
        for t in list(rounded.flow.parameters()) + list(rounded.flow.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    return abs(flow_bits_per_dim(rounded, x) - flow_bits_per_dim(bundle, x))


def _train(name: str, seed: int, device: str, progress: ProgressFn, cancel: CancelToken, smoke: bool) -> FlowBundle:
    """Shared recipe: build the entry's flow, fit it on the train split, measure, and fill the card."""
    recipe = RECIPES[name]
    dataset = _DATASETS[name]
    dev = resolve_device(device)
    train = load_data(dataset, "train")
    x = train.x
    if smoke:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:SMOKE_SIZE]]
        recipe = FlowRecipe(recipe.architecture, recipe.hparams, epochs=1, batch_size=32, lr=recipe.lr,
                            warmup_steps=2, init_batch=64)
    torch.manual_seed(seed)
    card = ModelCard(name=name, family="flow", architecture=recipe.architecture, hparams=dict(recipe.hparams),
                     data_shape=list(train.shape), seed=seed, description=ZOO[name].description)
    bundle: FlowBundle = build(card)  # type: ignore[assignment]
    bundle.to(dev)
    seconds = fit_flow(bundle, x, recipe, seed, progress, cancel, max_steps=SMOKE_STEPS if smoke else None)
    limit = 64 if smoke else None
    metrics = EVALUATORS[name](bundle, dev, limit=limit)
    training = {
        "recipe": ZOO[name].recipe, "epochs": recipe.epochs, "batch_size": recipe.batch_size,
        "optimiser": f"Adam(lr={recipe.lr}), {recipe.warmup_steps}-step linear warm-up, cosine decay, "
                     f"grad-norm clip {recipe.clip_norm}",
        "dequantization": "uniform, fresh noise every batch" if bundle.n_bits else "none (continuous data)",
        "seconds": round(seconds, 3), "seconds_per_epoch": round(seconds / recipe.epochs, 3),
        "parameters": sum(p.numel() for p in bundle.flow.parameters()), "device": str(dev), "smoke": smoke,
        "recipe_config": {k: v for k, v in asdict(recipe).items() if k not in ("architecture", "hparams")},
    }
    if name in _DEVIATIONS:
        training["deviations"] = _DEVIATIONS[name]
    if bundle.n_bits:
        test = load_data(dataset, "test").x[: 64 if smoke else 500]
        change = _float16_bpd_change(bundle, test)
        training["float16_bpd_change"] = round(change, 5)
        training["storage_dtype"] = "float16" if change < FLOAT16_BPD_TOLERANCE else "float32"
    else:
        training["storage_dtype"] = "float32"  # the toy flow is tiny; keep its density exact
    bundle.card.training = training
    bundle.card.data = {"dataset": dataset, "split": "train", "size": len(x)}
    bundle.card.metrics = {k: float(v) for k, v in metrics.items()}
    bundle.card.floors = {k: [op, v] for k, (op, v) in ZOO[name].floors.items()}
    return bundle.to("cpu").eval()


@torch.no_grad()
def _image_metrics(bundle: FlowBundle, dataset: str, device: str | torch.device, limit: int | None) -> dict[str, float]:
    """Held-out bits/dim (fixed dequantization seed 0) and sanity of 64 samples at temperature 0.7 (Glow's
    reporting temperature; at temperature 1 these small flows send some latents off the data manifold, where the
    inverse saturates)."""
    bundle.to(resolve_device(device)).eval()
    test = load_data(dataset, "test").x
    test = test[:limit] if limit else test
    samples = bundle.sample(64, seed=0, temperature=SAMPLE_TEMPERATURE)
    finite = torch.isfinite(samples).flatten(1).all(1).float().mean().item()
    return {
        "test_bpd": flow_bits_per_dim(bundle, test, seed=0),
        "sample_finite_fraction": finite,
        "sample_mean_gap": abs(torch.nan_to_num(samples).mean().item() - test.mean().item()),
    }


def train_toy_flow(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                   cancel: CancelToken = CancelToken(), smoke: bool = False) -> FlowBundle:
    """RealNVP (16 couplings, 64 hidden units) on the 10,000 ring5 training points."""
    return _train("toy-flow", seed, device, progress, cancel, smoke)


@torch.no_grad()
def evaluate_toy_flow(bundle: FlowBundle, device: str | torch.device = "cpu", limit: int | None = None
                      ) -> dict[str, float]:
    """Mean NLL in nats of the ring5 test points (the mixture's own entropy is ~1.23 nats), and the smallest
    share of 2,000 samples falling nearest to one of the five modes (0.2 each for a perfect fit)."""
    bundle.to(resolve_device(device)).eval()
    test = load_data("ring5", "test")
    x = test.x[:limit] if limit else test.x
    nll = flow_nll(bundle, x, dequantize=False)
    modes = torch.stack([test.x[test.labels == k].mean(0) for k in range(5)])
    samples = bundle.sample(2000, seed=0)
    nearest = torch.cdist(samples, modes).argmin(1)
    shares = torch.bincount(nearest, minlength=5).float() / len(samples)
    return {"test_nll": nll.double().mean().item(), "min_mode_share": shares.min().item()}


def train_mnist_flow(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                     cancel: CancelToken = CancelToken(), smoke: bool = False) -> FlowBundle:
    """Two-level Glow-style flow (8 steps per level, learned split prior) on the 4,000 bundled MNIST training
    digits, quantized to 5 bits."""
    return _train("mnist-flow", seed, device, progress, cancel, smoke)


def evaluate_mnist_flow(bundle: FlowBundle, device: str | torch.device = "cpu", limit: int | None = None
                        ) -> dict[str, float]:
    """Bits/dim of the 1,000 held-out digits (or the first `limit`) and sample sanity."""
    return _image_metrics(bundle, "mnist", device, limit)


def train_synthfaces_flow(seed: int = 0, device: str = "cpu", progress: ProgressFn = NO_PROGRESS,
                          cancel: CancelToken = CancelToken(), smoke: bool = False) -> FlowBundle:
    """Three-level Glow-style flow (4 steps per level, learned split prior) on the 10,000 synthfaces training
    faces (32x32), quantized to 5 bits."""
    return _train("synthfaces-flow", seed, device, progress, cancel, smoke)


def evaluate_synthfaces_flow(bundle: FlowBundle, device: str | torch.device = "cpu", limit: int | None = None
                             ) -> dict[str, float]:
    """Bits/dim of the held-out synthfaces test images (or the first `limit`) and sample sanity."""
    return _image_metrics(bundle, "synthfaces", device, limit)


EVALUATORS = {"toy-flow": evaluate_toy_flow, "mnist-flow": evaluate_mnist_flow,
              "synthfaces-flow": evaluate_synthfaces_flow}
