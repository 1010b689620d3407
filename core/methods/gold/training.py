"""GOLD in training (Mo et al. 2019): example re-weighting (Sec. 3.1, eq. 5) and active learning (Sec. 3.2, 4.3).

Re-weighting. A fresh cGAN of the model's architecture trains with the plain ACGAN loss (eq. 1) for the first half
of the epochs; then it forks: the baseline goes on with eq. 1 and the GOLD branch with eq. 5, where D's fake terms
are multiplied by d(G(z, c), c)^beta (beta = 1 for D, 0 for G; d^beta = -|d|^beta for d < 0, so weights may be
negative as in the authors' code), d being eq. 3 from the current D. Both branches share the first half and the
random stream, so their curves differ only by the loss. Each epoch logs the players' mean losses, the mean GOLD of
generated samples (Fig. 1b) and, every `fc_every` epochs, the fitting capacity (Fig. 1c). Under torchrun
(`python -m core gold MODEL reweight` launched by `torchrun --nproc_per_node N`) every epoch's minibatches are
split over the processes by `fit_acgan` (global batch, learning rate and seeds as in one process); rank 0 alone
measures and reports, while the others go on to the next epoch and wait for it at the first gradient all-reduce.

Active learning. A semi-supervised cGAN on a pool whose labels are mostly unknown: each round trains (keeping G,
re-initialising D, as the paper does) with `ActiveConfig.lambda_c`, optionally keeps the epoch whose model has the
best fitting capacity on a validation set of labelled held-out images (`val_size`; Sec. 4.3), measures the kept
model's fitting capacity on the other held-out images, scores the unlabelled pool with it by eq. 8 (images) or eq. 9
(the 2-D clusters) and reveals the labels of the true top-k (sorted, unlike the authors' code, which took the last
entries of an unsorted list); the random baseline reveals k random ones from the same start.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from core.distributed import team as current_team
from core.errors import EmptySelection, LetheError
from core.methods.gold.estimator import score, score_generated, terms
from core.metrics.fitting_capacity import fitting_capacity
from core.models.bundles import GANBundle
from core.models.registry import build
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn
from core.zoo.gans import ACGANRecipe, fit_acgan


def reweight_power(d: torch.Tensor, beta: float) -> torch.Tensor:
    """d^beta with the paper's sign convention d^beta = -|d|^beta for d < 0 (eq. 5); beta = 0 gives 1."""
    if beta == 0:
        return torch.ones_like(d)
    return torch.sign(d) * d.abs().pow(beta)


def fresh_copy(gan: GANBundle, seed: int) -> GANBundle:
    """An untrained model of `gan`'s architecture and hyperparameters (same card, new weights from `seed`)."""
    card = copy.deepcopy(gan.card)
    card.metrics, card.floors = {}, {}
    torch.manual_seed(seed)
    return build(card).to(gan.device)  # type: ignore[return-value]


def _classifier_for(x: torch.Tensor, num_classes: int):
    """The fitting-capacity classifier: LeNet for square images (the default), a small MLP for points."""
    if x.dim() == 2:
        return lambda: nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                     nn.Linear(64, num_classes))
    return None


def fitting_capacity_of(gan: GANBundle, test_x: torch.Tensor, test_y: torch.Tensor, n: int, epochs: int,
                        seed: int, cancel: CancelToken | None = None) -> float:
    """Fitting capacity on one fixed set of n labelled samples of G (a small-budget version of the paper's)."""
    x, y = gan.sample(n, seed=seed)
    return fitting_capacity(x, y, test_x, test_y, make_net=_classifier_for(test_x, gan.num_classes), epochs=epochs,
                            seed=seed, device=str(gan.device), cancel=cancel).value


def recipe_for(gan: GANBundle, epochs: int, lr: float | None = None, batch_size: int = 128) -> ACGANRecipe:
    """The zoo's ACGAN recipe for this kind of model: Adam 2e-4 for images, 1e-3 for the 2-D toy (as `toy-acgan`
    was trained), unless `lr` is given."""
    default = 1e-3 if len(gan.card.data_shape or []) == 1 else ACGANRecipe().lr
    return ACGANRecipe(epochs=epochs, batch_size=batch_size, lr=lr or default)


# ------------------------------------------------------------------------------------------------ eq. 5


@dataclass
class ReweightConfig:
    """Eq. 5's schedule and the measurement budget. Paper: 20 epochs (half plain), beta_D = 1, beta_G = 0,
    fitting capacity from 40 epochs x 10k samples; `fc_samples` / `fc_epochs` shrink it along training."""

    epochs: int = 20
    beta: float = 1.0
    lr: float | None = None
    batch_size: int = 128
    gold_samples: int = 1000
    fc_every: int = 1
    fc_samples: int = 5000
    fc_epochs: int = 5
    train_size: int | None = None

    def validate(self) -> None:
        if self.epochs < 2:
            raise LetheError(f"re-weighting needs at least 2 epochs (half plain, half re-weighted), got {self.epochs}.",
                             "The paper trains 20 epochs on 1-channel images.")
        if self.beta < 0:
            raise LetheError(f"beta must be >= 0, got {self.beta}.", "The paper uses beta = 1 for D.")
        if self.fc_every < 1:
            raise LetheError(f"the fitting capacity is measured every N >= 1 epochs, got {self.fc_every}.",
                             "Use --fc-every 1 for Fig. 1c's curve, or the number of epochs to measure only at the end.")
        if self.train_size is not None and self.train_size < 1:
            raise LetheError(f"the training size must be at least 1 image, got {self.train_size}.",
                             "Drop --train-size to train on every image.")


def _measure(gan: GANBundle, config: ReweightConfig, epoch: int, test, seed: int, cancel) -> dict[str, float]:
    _, s = score_generated(gan, config.gold_samples, seed=10_000 + epoch)
    out = {"gold_mean": float(s.gold().mean()), "marginal_mean": float(s.marginal.mean()),
           "conditional_mean": float(s.conditional.mean())}
    if test is not None and (epoch % config.fc_every == 0 or epoch == config.epochs):
        out["fitting_capacity"] = fitting_capacity_of(gan, test.x, test.labels, config.fc_samples, config.fc_epochs,
                                                      seed, cancel)
    return out


def reweight(gan: GANBundle, data, test, config: ReweightConfig, seed: int = 0, progress: ProgressFn = NO_PROGRESS,
             cancel: CancelToken | None = None) -> dict:
    """Train a fresh copy of `gan`'s architecture on `data` with and without eq. 5 (see the module docstring);
    returns {"metrics": finals, "history": rows of (epoch, branch, gold_mean, ..., fitting_capacity),
    "bundle": the re-weighted model}."""
    config.validate()
    cancel = cancel or CancelToken()
    x, y = (data.x, data.labels) if config.train_size is None else (data.x[:config.train_size],
                                                                       data.labels[:config.train_size])
    recipe = recipe_for(gan, 1, config.lr, config.batch_size)
    half = config.epochs // 2
    model = fresh_copy(gan, seed)
    history: list[dict] = []
    seconds = {"plain": 0.0, "gold": 0.0}
    steps = 2 * config.epochs - half
    team = current_team()

    def step(epoch: int, bundle: GANBundle, branch: str, weights) -> None:
        start = time.perf_counter()
        losses: dict[str, float] = {}
        fit_acgan(bundle, x, y, recipe, seed * 1000 + epoch, progress=lambda e: losses.update(e.metrics),
                  cancel=cancel, fake_weights=weights)
        seconds["gold" if branch == "gold" else "plain"] += time.perf_counter() - start
        if not team.is_main:  # torchrun: the other ranks trained their shards; rank 0 measures and reports
            return
        row = {"epoch": epoch, "branch": branch, "loss_d": losses["loss_d"], "loss_g": losses["loss_g"],
               **_measure(bundle, config, epoch, test, seed, cancel)}
        history.append(row)
        done = len(history)
        shown = {f"{k}_{'gold' if branch == 'gold' else 'baseline'}": v for k, v in row.items()
                 if k in ("gold_mean", "fitting_capacity", "loss_d", "loss_g")}
        progress(ProgressEvent(done, steps, shown, stage=f"{branch} epoch {epoch}/{config.epochs}"))

    for epoch in range(1, half + 1):
        step(epoch, model, "both", None)
    gold_model = model.copy()

    def weights(logit: torch.Tensor, class_logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        marginal, conditional = terms(logit, class_logits, c)
        return reweight_power(marginal + conditional, config.beta)

    for epoch in range(half + 1, config.epochs + 1):
        step(epoch, model, "baseline", None)
        step(epoch, gold_model, "gold", weights)
    if not team.is_main:
        return {"metrics": {}, "history": [], "bundle": gold_model.eval()}
    last = {b: [r for r in history if r["branch"] == b][-1] for b in ("baseline", "gold")}
    metrics = {f"{k}_{b}": v for b, row in last.items() for k, v in row.items() if k not in ("epoch", "branch")}
    plain_epochs = config.epochs  # half shared + half baseline
    metrics["epoch_seconds_plain"] = seconds["plain"] / plain_epochs
    metrics["epoch_seconds_gold"] = seconds["gold"] / max(1, config.epochs - half)
    return {"metrics": metrics, "history": history, "bundle": gold_model.eval()}


# ------------------------------------------------------------------------------------------- Sec. 3.2


SCHEDULES = {"clusters6": (4, 1, 8, False), "mnist": (10, 2, 18, True), "fashion-mnist": (20, 5, 40, True)}
"""The paper's (initial, query, final) labelled-set sizes (Sec. 4.3); True = per class."""


@dataclass
class ActiveConfig:
    """Active learning's schedule, training and measurement budget. `per_class` multiplies the schedule by the
    number of classes; `balanced` uses eq. 9 instead of eq. 8 (the paper: eq. 9 for the 2-D clusters); `lambda_c`
    weighs the ACGAN loss's fake-class terms in every round. `val_size` > 0 draws `val_size` held-out images at
    random (one fixed draw) as a validation set (the rest stay the test set of the reported fitting capacity) and,
    in every round, keeps the epoch with the best fitting capacity on it; 0 keeps the last epoch.

    The paper's Sec. 4 trains active-learning rounds with lambda_c = 0.01 (clusters, MNIST) or 0 (Fashion-MNIST)
    and keeps each round's best epoch on 100 validation images. Our defaults are `ACGANRecipe`'s 0.1 and the last
    epoch, measured better on our models (GOLD vs random final fitting capacity, 2-D clusters, 5 seeds, at 10 / 30 /
    100 epochs per round: paper's rules 58.8 vs 53.1, 59.0 vs 61.3, 61.0 vs 61.6%; ours 65.0 vs 56.2, 65.8 vs 48.3,
    65.8 vs 48.4%). lambda_c also weighs G's class term (eq. 1): on mnist-acgan at 3 epochs per round 0.01 left the
    fitting capacity at chance (4.9-10.1% over the first rounds of two seeds). `lambda_c=0.01, val_size=100`
    (`--lambda-c 0.01 --val-size 100`) runs the paper's rules. On MNIST, (10, 2, 18) per class, GOLD's lead needs
    rounds that train the cGAN: final fitting capacity vs random -1.8 points at 3 epochs per round, -0.8 at 10,
    +0.9 at 20 (82.5 vs 81.6%, 3 seeds); `epochs` defaults to the paper's 100."""

    initial: int = 10
    query: int = 2
    final: int = 18
    per_class: bool = True
    epochs: int = 100
    balanced: bool = False
    strategy: str = "gold"
    pool_size: int | None = None
    fc_samples: int = 5000
    fc_epochs: int = 5
    lambda_c: float = 0.1
    val_size: int = 0

    def validate(self) -> None:
        if not 0 < self.initial <= self.final or self.query < 1:
            raise LetheError(f"the schedule ({self.initial}, {self.query}, {self.final}) needs 0 < initial <= final "
                             "and query >= 1.", "The paper uses (10, 2, 18) per class on MNIST.")
        if self.strategy not in ("gold", "random"):
            raise LetheError(f"the query strategy is gold or random, not {self.strategy!r}.", "Pick one.")
        if not self.lambda_c >= 0:  # NaN too
            raise LetheError(f"lambda_c must be >= 0, got {self.lambda_c}.",
                             "The default is 0.1; the paper's active learning uses 0.01 (clusters, MNIST) or 0.")
        if self.val_size < 0:
            raise LetheError(f"the validation set size must be >= 0 images, got {self.val_size}.",
                             "The paper uses 100; 0 (the default) keeps each round's last epoch.")

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> "ActiveConfig":
        """The paper's schedule and query score for `dataset` (MNIST's for other data), then `overrides`."""
        initial, query, final, per_class = SCHEDULES.get(dataset, SCHEDULES["mnist"])
        config = cls(initial, query, final, per_class, balanced=dataset == "clusters6")
        return replace(config, **overrides)


def validation_split(test, val_size: int):
    """(validation, test): `val_size` held-out images drawn at random (one fixed draw, so that every seed and
    strategy is judged on the same images, and a held-out folder sorted by class still gives every class) and
    the rest, so that the epoch chosen on the validation set is scored on images it was not chosen on; a
    LetheError when no test image would be left."""
    if val_size >= len(test):
        raise LetheError(f"the validation set takes {val_size} held-out images and the fitting capacity "
                         f"is measured on the rest, but the held-out set has {len(test)}.",
                         f"Use a validation set smaller than {len(test)} (--val-size; 0 keeps each round's last "
                         "epoch), or give more held-out images.")
    rows = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    return test.subset(rows[:val_size].sort().values), test.subset(rows[val_size:].sort().values)


def initial_labels(labels: torch.Tensor, count_per_class: int | None, total: int | None, seed: int) -> torch.Tensor:
    """A boolean mask of the pool's first known labels: `count_per_class` of each class, or `total` at random."""
    gen = torch.Generator().manual_seed(seed)
    known = torch.zeros(len(labels), dtype=torch.bool)
    if count_per_class is not None:
        for c in labels.unique():
            rows = (labels == c).nonzero().reshape(-1)
            known[rows[torch.randperm(len(rows), generator=gen)[:count_per_class]]] = True
    else:
        known[torch.randperm(len(labels), generator=gen)[:total]] = True
    return known


def query(gan: GANBundle, x: torch.Tensor, known: torch.Tensor, k: int, strategy: str, balanced: bool,
          seed: int) -> torch.Tensor:
    """Indices of k unlabelled pool images to label: the true top-k of eq. 8 (eq. 9 with `balanced`), or k at
    random."""
    unknown = (~known).nonzero().reshape(-1)
    if len(unknown) == 0:
        raise EmptySelection("every label of the pool is known: there is nothing left to query.",
                             "Use a larger pool or a smaller final labelled-set size.")
    k = min(k, len(unknown))
    if strategy == "random":
        return unknown[torch.randperm(len(unknown), generator=torch.Generator().manual_seed(seed))[:k]]
    s = score(gan, x[unknown], None, "unlabeled")
    values = s.gold(s.balance_ratio() if balanced else 1.0)
    return unknown[torch.topk(values, k).indices]


def best_epoch_model(model: GANBundle, x: torch.Tensor, labels: torch.Tensor, recipe: ACGANRecipe, seed: int,
                     val, config: ActiveConfig, cancel: CancelToken) -> tuple[GANBundle, int, float | None]:
    """Train `model` with `recipe` and return (the model to keep, its epoch, its fitting capacity on `val`): the
    epoch with the best validation fitting capacity (Sec. 4.3; the earliest on a tie), measured on a copy after
    every epoch so training goes on untouched; with no validation images, the last epoch (and None)."""
    best: dict = {"model": model, "epoch": recipe.epochs, "fc": None}

    def keep_best(epoch: int, live: GANBundle) -> None:
        snapshot = live.copy()  # sampling puts a model in eval mode: the live one keeps training
        fc = fitting_capacity_of(snapshot, val.x, val.labels, config.fc_samples, config.fc_epochs, seed, cancel)
        if best["fc"] is None or fc > best["fc"]:
            best.update(model=snapshot, epoch=epoch, fc=fc)

    fit_acgan(model, x, labels, recipe, seed, cancel=cancel, on_epoch=keep_best if len(val) else None)
    return best["model"], best["epoch"], best["fc"]


def active_learning(gan: GANBundle, data, test, config: ActiveConfig, seed: int = 0,
                    progress: ProgressFn = NO_PROGRESS, cancel: CancelToken | None = None) -> dict:
    """Rounds of semi-supervised training and querying on `data` (see the module docstring). The held-out `test`
    images are split (`validation_split`): `config.val_size` choose each round's best epoch, the rest measure its
    fitting capacity. Returns {"metrics", "history": one row per round (labelled, fitting_capacity, best_epoch,
    val_fitting_capacity), "rounds": per pool image the round its label became known (0 = at the start, -1 =
    never), "bundle": the last round's kept model}."""
    config.validate()
    cancel = cancel or CancelToken()
    if data.labels is None:
        raise EmptySelection("active learning needs the pool's true labels to reveal them when queried; this pool "
                             "has no labels at all.", "Use a labelled dataset (the queries reveal its labels).")
    val, test = validation_split(test, config.val_size)
    x, truth = (data.x, data.labels) if config.pool_size is None else (data.x[:config.pool_size],
                                                                        data.labels[:config.pool_size])
    k = gan.num_classes if config.per_class else 1
    known = initial_labels(truth, config.initial if config.per_class else None,
                           None if config.per_class else config.initial, seed)
    rounds = torch.where(known, 0, -1)
    total_rounds = (config.final - config.initial) // config.query + 1
    model = fresh_copy(gan, seed)
    recipe = replace(recipe_for(gan, config.epochs), lambda_c=config.lambda_c)
    history = []
    for r in range(total_rounds):
        cancel.raise_if_set()
        if r > 0:  # keep G (the previous round's best epoch), re-initialise D (Sec. 4.3)
            model.discriminator = fresh_copy(gan, seed + r).discriminator
        labels = torch.where(known, truth, -1)
        model, epoch, val_fc = best_epoch_model(model, x, labels, recipe, seed * 100 + r, val, config, cancel)
        fc = fitting_capacity_of(model, test.x, test.labels, config.fc_samples, config.fc_epochs, seed, cancel)
        history.append({"round": r, "labelled": int(known.sum()), "fitting_capacity": fc, "best_epoch": epoch,
                        "val_fitting_capacity": val_fc})
        progress(ProgressEvent(r + 1, total_rounds, {"labelled": int(known.sum()), "fitting_capacity": fc},
                               stage=f"{config.strategy} round {r}"))
        if r < total_rounds - 1:
            picked = query(model, x, known, config.query * k, config.strategy, config.balanced, seed + r)
            known[picked] = True
            rounds[picked] = r + 1
    return {"metrics": {"fitting_capacity": history[-1]["fitting_capacity"], "labelled": int(known.sum()),
                        "rounds": total_rounds, **{f"config_{k}": v for k, v in asdict(config).items()
                                                   if k in ("initial", "query", "final", "strategy", "lambda_c",
                                                            "val_size")}},
            "history": history, "rounds": rounds, "bundle": model.eval()}
