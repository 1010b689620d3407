"""Data redaction for pre-trained GANs (Kong & Chaudhuri, SaTML 2023): Algorithms 1-3.

The pre-trained (G0, D0) is fine-tuned so that G stops generating the redaction set Omega. Fakes are drawn from
the mixture of eq. 2,

    p_fake = lambda * p_G + (1 - lambda) * p_Omega,

and both networks play the label-smoothed game of eq. 3,

    L(G, D) = E_{x ~ p_data restricted to the complement of Omega}[alpha+ log D(x) + (1 - alpha+) log(1 - D(x))]
            + E_{x ~ p_fake}[alpha- log D(x) + (1 - alpha-) log(1 - D(x))],

D maximising, i.e. minimising the binary cross-entropy against targets alpha+ on real and alpha- on fake data.
The three algorithms differ only in how Omega is described (see `core.methods.redaction.sets`):

- Alg. 1, data-based: p_Omega is uniform on the given training samples X ∩ Omega.
- Alg. 2, validity-based: R rounds (here one per epoch, as in the paper's Table II where R is the number of
  epochs); each round queries v on T fresh samples of the current G and adds the invalid ones to Omega'
  (initialised with the invalid training samples). Validity queries are counted: |X| + T R.
- Alg. 3, classifier-based: p_Omega is uniform on {x in X : f(x) < tau}, and D is replaced by the guided
  discriminator of eq. 6, guide(D, f)(x) = D(x) if f(x) >= tau else alpha- + (D(x) - alpha-) f(x), in both
  players' losses, so G receives f's gradient. The losses take log D' and log(1 - D') computed from D's logit
  (`guided_log_probs`), never a clamped probability, so G keeps its gradient where D is sure a sample is fake.

Real data are X minus the algorithm's X ∩ Omega. Each minibatch of real data makes K_D discriminator updates
then K_G generator updates (App. D); an epoch is one pass over the real data. G minimises the non-saturating
-log D'(G(z)), as in the zoo's pre-training recipe (the paper writes the minimax form). With
`fixed_discriminator=True` only G is updated: App. H's on-manifold adversarial samples.

Like with like: when the pre-trained G is a moving average of generators (the zoo's DCGANs), redaction keeps an
average of G from the pre-trained weights and measures and returns that average (`averaging`); the metrics and
the card name the generator reported (`generator`, `generator_ema`). Invalidity, IS and FID of every algorithm
are measured against one reference, the valid training samples (`measure.valid_training`).

Defaults are App. D-E's MNIST base setting: alpha+ 0.95, alpha- 0.05, lambda 0.85, T 1000, tau 0.5, 8 epochs,
batch 64, Adam 2e-4 (0.5, 0.999), K_D 1, K_G 1.

Devices and scale: the losses are summed on the device and read back once per checkpoint (not after every step),
which is also where a non-finite loss is caught; `precision` bf16 / fp16 autocasts both players (`core.precision`).
Under torchrun every rank draws the same global batches and fakes and trains on its shard of them through
DistributedDataParallel; rank 0 alone measures (`core.distributed`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from core.data.base import ImageData
from core.distributed import Team, team as current_team
from core.errors import EmptySelection, LetheError, NonFiniteError
from core.methods.redaction.averaging import GeneratorAverage, card_decay, short_horizon_decay
from core.methods.redaction.measure import Meter, film_latents, valid_training
from core.methods.redaction.sets import ALGORITHMS, RedactionSet
from core.models.bundles import ClassifierBundle, GANBundle, from_unit
from core.models.portable import PortableBundles
from core.precision import PRECISIONS, Precision
from core.progress import NO_PROGRESS, CancelToken, ProgressEvent, ProgressFn


@dataclass
class RedactionConfig:
    """Hyperparameters of Alg. 1-3 with the paper's MNIST defaults (App. D-E) and what Lethe measures."""

    algorithm: str = "data"  # "data" (Alg. 1), "validity" (Alg. 2) or "classifier" (Alg. 3)
    epochs: int = 8
    lam: float = 0.85  # lambda of eq. 2: the share of p_G in the fake mixture
    alpha_pos: float = 0.95  # alpha+ of eq. 3
    alpha_neg: float = 0.05  # alpha- of eq. 3
    queries_per_round: int = 1000  # T of Alg. 2
    tau: float = 0.5  # threshold of the classifier-based Omega = {f < tau}
    k_d: int = 1
    k_g: int = 1
    batch_size: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    fixed_discriminator: bool = False  # App. H: keep D fixed and update only G
    eval_samples: int = 10_000  # samples per invalidity / IS / FID measurement
    first_epoch_checks: int = 4  # measurements inside the first epoch (invalidity falls fastest there)
    film_size: int = 8  # latents in the redaction film
    ema: float | None = None  # decay of the averaged G that is reported; None: as the pre-trained G (see averaging)
    precision: str = "fp32"  # fp32, bf16 or fp16 (autocast of both players; see core.precision)

    def validate(self) -> None:
        """Raise LetheError naming the first out-of-range hyperparameter."""
        checks = [
            (self.algorithm in ALGORITHMS, f"algorithm must be one of {', '.join(ALGORITHMS)}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (0.0 < self.lam <= 1.0, "lambda must be in (0, 1]"),
            (0.5 < self.alpha_pos <= 1.0, "alpha+ must be in (1/2, 1]"),
            (0.0 <= self.alpha_neg < 0.5, "alpha- must be in [0, 1/2)"),
            (0.0 < self.tau < 1.0, "tau must be in (0, 1)"),
            (self.queries_per_round >= 1, "T (queries per round) must be at least 1"),
            (self.k_d >= 0 and self.k_g >= 1, "K_D must be >= 0 and K_G >= 1"),
            (self.batch_size >= 2, "batch size must be at least 2"),
            (self.lr > 0, "learning rate must be positive"),
            (self.eval_samples >= 100, "measure invalidity on at least 100 samples (the paper uses 50,000)"),
            (self.ema is None or 0.0 <= self.ema < 1.0, "the moving-average decay must be in [0, 1) (0 = live G)"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.algorithm != "classifier" or self.alpha_neg > 0.0,
             "the classifier-based algorithm needs alpha- > 0: with alpha- = 0, eq. 6 gives D'(x) = 0 where f(x) = 0 "
             "and G's loss -log D' is infinite"),
        ]
        for ok, message in checks:
            if not ok:
                raise LetheError(f"bad redaction config: {message}.", "Fix the value; the paper's defaults are "
                                 "alpha+ 0.95, alpha- 0.05, lambda 0.85, T 1000, tau 0.5, 8 epochs.")


@dataclass
class RedactionResult(PortableBundles):
    """The redacted copy of the GAN, final metrics, the measurement history and the redaction film. It pickles
    its GAN as (card, state), so a result comes back from an executor's worker process (`redaction_study`)."""

    bundle: GANBundle
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    film: np.ndarray | None = None  # film_size x checkpoints x C x H x W
    figures: dict[str, Any] = field(default_factory=dict)


def guide(d_prob: torch.Tensor, f: torch.Tensor, tau: float, alpha_neg: float) -> torch.Tensor:
    """Eq. 6: D(x) where f(x) >= tau, else alpha- + (D(x) - alpha-) f(x), which pulls D toward alpha- on Omega."""
    return torch.where(f >= tau, d_prob, alpha_neg + (d_prob - alpha_neg) * f)


def guided_log_probs(logit: torch.Tensor, f: torch.Tensor, tau: float,
                     alpha_neg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(log D'(x), log(1 - D'(x))) of eq. 6's guided discriminator, from D's logit, without forming D'.

    Where f >= tau, D' = sigmoid(logit): the logs are logsigmoid(+-logit), whose gradient stays near 1 however
    sure D is (a clamped probability has none there). Where f < tau, D' = alpha- (1 - f) + f sigmoid(logit) and
    1 - D' = (1 - alpha-) (1 - f) + f sigmoid(-logit); each is a positive floor times 1 + a small ratio, so
    log(floor) + log1p(ratio) is exact. f is zeroed outside its branch so that no infinite log leaks through
    `where` into the gradient (needs alpha- > 0, which the config checks)."""
    on = f < tau
    f_on = torch.where(on, f, torch.zeros_like(f))
    floor_pos, floor_neg = alpha_neg * (1 - f_on), (1 - alpha_neg) * (1 - f_on)
    log_pos = torch.log(floor_pos) + torch.log1p(f_on * torch.sigmoid(logit) / floor_pos)
    log_neg = torch.log(floor_neg) + torch.log1p(f_on * torch.sigmoid(-logit) / floor_neg)
    return torch.where(on, log_pos, F.logsigmoid(logit)), torch.where(on, log_neg, F.logsigmoid(-logit))


def guided_bce(logit: torch.Tensor, f: torch.Tensor, target: float, tau: float, alpha_neg: float) -> torch.Tensor:
    """-[t log D' + (1 - t) log(1 - D')] averaged over the batch: eq. 3's terms for the guided D' of eq. 6."""
    log_d, log_not_d = guided_log_probs(logit, f, tau, alpha_neg)
    return -(target * log_d + (1 - target) * log_not_d).mean()


class _Game:
    """One player's view of eq. 3: D's (possibly guided) verdicts and the two losses."""

    def __init__(self, gan: GANBundle, config: RedactionConfig, redaction_set: RedactionSet) -> None:
        self.gan, self.config = gan, config
        self.guided = config.algorithm == "classifier"
        self.f = redaction_set.classifier if self.guided else None

    def loss(self, x_unit: torch.Tensor, target: float, f_grad: bool) -> torch.Tensor:
        """BCE of D'(x) against `target`; D' = D, or guide(D, f) for Alg. 3 (f differentiated when `f_grad`)."""
        logit = self.gan.discriminator(from_unit(x_unit, self.gan.pixel_range)).reshape(-1).float()
        if not self.guided:
            return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))
        with torch.set_grad_enabled(f_grad):
            f = self.f(x_unit).reshape(-1)  # type: ignore[misc]
        return guided_bce(logit, f, target, self.config.tau, self.config.alpha_neg)


def _check_inputs(gan: GANBundle, data: ImageData, config: RedactionConfig) -> None:
    config.validate()
    if not isinstance(gan, GANBundle):
        raise LetheError(f"redaction works on GANs; {gan.card.name!r} is a {gan.family}.",
                         "Pick a GAN such as mnist-dcgan.")
    if gan.conditional:
        raise LetheError(f"{gan.card.name!r} is a conditional GAN; the paper's redaction is defined for "
                         "unconditional GANs (its Sec. VI names conditional models as future work).",
                         "Pick an unconditional GAN such as mnist-dcgan.")
    if gan.discriminator is None:
        raise LetheError(f"{gan.card.name!r} has no discriminator; redaction fine-tunes G and D together.",
                         "Load a model saved with its discriminator.")
    if tuple(data.shape) != tuple(gan.data_shape):
        raise LetheError(f"the data's samples have shape {tuple(data.shape)} but {gan.card.name!r} generates "
                         f"{tuple(gan.data_shape)}.", "Redact with the dataset the GAN was trained on.")


def _fake_batch(gan: GANBundle, omega: torch.Tensor, b: int, lam: float, gen: torch.Generator,
                with_grad: bool, rows: slice | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(fakes from eq. 2's mixture, the G part alone): each of b slots comes from G with probability lambda and
    from p_Omega (uniform on `omega`) otherwise. An empty Omega (nothing known yet) leaves p_fake = p_G.

    The b slots are drawn in full (the same random numbers whatever `rows`); only the slots in `rows` (this
    rank's shard, default all) are generated and returned."""
    n_omega = int((torch.rand(b, generator=gen) > lam).sum()) if len(omega) else 0
    z = torch.randn(b - n_omega, gan.latent_dim, generator=gen)
    picks = torch.randint(len(omega), (n_omega,), generator=gen) if n_omega else None
    lo, hi, _ = (rows or slice(0, b)).indices(b)
    n_g = b - n_omega
    with torch.set_grad_enabled(with_grad):
        from_g = gan.generate(z[lo:min(hi, n_g)].to(gan.device))
    mine = picks[max(lo - n_g, 0):max(hi - n_g, 0)] if picks is not None else None
    chosen = omega[mine].to(gan.device, from_g.dtype) if mine is not None and len(mine) else from_g[:0]
    return torch.cat([from_g, chosen]), from_g


def redact(
    gan: GANBundle,
    redaction_set: RedactionSet,
    data: ImageData,
    config: RedactionConfig | None = None,
    seed: int = 0,
    judge: ClassifierBundle | None = None,
    progress: ProgressFn = NO_PROGRESS,
    cancel: CancelToken | None = None,
) -> RedactionResult:
    """Run the configured algorithm on a copy of `gan` (never `gan` itself) and measure it as it goes.

    `data` is the GAN's training set X; `judge` the dataset's label classifier for IS/FID (None for toys).
    Progress: one event per checkpoint with invalidity (and its standard error), IS, FID, the mean losses since
    the last checkpoint, the validity queries so far, and the film column as images."""
    config = config or RedactionConfig()
    cancel = cancel or CancelToken()
    _check_inputs(gan, data, config)
    team = current_team()
    team.check_batch(config.batch_size)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = gan.copy()
    omega_mask = redaction_set.training_omega(data, config.algorithm, config.tau)
    if config.algorithm == "data" and not bool(omega_mask.any()):
        raise EmptySelection(f"no training sample is in {redaction_set.name!r}, so Alg. 1 has nothing to redact.",
                             "Pick a non-empty forget set, or use the validity- or classifier-based algorithm.")
    real, omega = data.x[~omega_mask], data.x[omega_mask]
    if len(real) < config.batch_size:
        raise EmptySelection(f"only {len(real)} training samples remain outside {redaction_set.name!r}; a "
                             f"minibatch needs {config.batch_size}.", "Redact a smaller set or lower the batch size.")
    queries = len(data) if config.algorithm == "validity" else 0
    reference = valid_training(redaction_set, data) if judge is not None else None
    meter = Meter(redaction_set, judge, reference, n=config.eval_samples, seed=seed + 1)
    z_film = film_latents(model, redaction_set, config.film_size, seed + 2) if data.is_image else None
    started = time.perf_counter()  # redaction time: after the set-up of the measurements (reference, film latents)
    batches_per_epoch = len(real) // config.batch_size
    check_steps = _checkpoints(batches_per_epoch, config.epochs, config.first_epoch_checks)
    total = batches_per_epoch * config.epochs
    decay = _decay(gan, config, total * config.k_g)
    average = GeneratorAverage(model.generator, decay) if decay > 0 else None
    shown = replace(model, generator=average.module) if average is not None else model  # what is measured
    history: list[dict[str, float]] = []
    film: list[np.ndarray] = []
    losses = LossSums(model.device)
    eval_seconds = 0.0

    def checkpoint(step: int, message: str) -> None:
        nonlocal eval_seconds
        means = losses.read(team)  # every rank: the one collective of a checkpoint
        if not team.is_main:
            return
        t0 = time.perf_counter()
        row = {"epoch": step / batches_per_epoch, **meter(shown, cancel), "validity_queries": queries,
               "omega_size": len(omega), **means}
        images = None
        if z_film is not None:
            with torch.no_grad():
                shown.eval()
                images = shown.generate(z_film).cpu().numpy()
            film.append(images)
        history.append(row)
        eval_seconds += time.perf_counter() - t0
        progress(ProgressEvent(step, total, dict(row), images=images, message=message, stage="redact"))

    checkpoint(0, "pre-trained model")
    # Under torchrun a player goes through DDP where its gradient is shared: D in D's step, G in G's step (the
    # gradient G's step leaves on D is dropped by D's next zero_grad, so it is not all-reduced). The wrappers
    # share `model`'s parameters, so `model` is what is measured and saved.
    d_view = replace(model, discriminator=team.wrap(model.discriminator))
    g_view = replace(model, generator=team.wrap(model.generator))
    game_d, game_g = _Game(d_view, config, redaction_set), _Game(model, config, redaction_set)
    precision = Precision(config.precision, model.device)
    opt_g = precision.stepper(torch.optim.Adam(model.generator.parameters(), lr=config.lr, betas=config.betas))
    opt_d = precision.stepper(torch.optim.Adam(model.discriminator.parameters(), lr=config.lr, betas=config.betas))
    rows, b_size = team.shard(config.batch_size), config.batch_size
    step = 0
    for epoch in range(1, config.epochs + 1):
        if config.algorithm == "validity":  # Alg. 2: one round of T validity queries per epoch
            omega, queries = team.broadcast(_query_round(model, redaction_set, omega, config.queries_per_round,
                                                         gen, queries))
        order = torch.randperm(len(real), generator=gen)
        model.generator.train()
        model.discriminator.train()
        for b in range(batches_per_epoch):
            team.agree_cancel(cancel, step)
            x_real = real[order[b * b_size : (b + 1) * b_size][rows]].to(model.device)
            if not config.fixed_discriminator:
                for _ in range(config.k_d):
                    with precision.autocast():
                        fake, _ = _fake_batch(model, omega, b_size, config.lam, gen, with_grad=False, rows=rows)
                        loss_d = (game_d.loss(x_real, config.alpha_pos, False)
                                  + game_d.loss(fake, config.alpha_neg, False))
                    opt_d.step(loss_d)
                    losses.add("loss_d", loss_d)
            for _ in range(config.k_g):
                with precision.autocast():
                    _, from_g = _fake_batch(g_view, omega[:0], b_size, 1.0, gen, with_grad=True, rows=rows)
                    loss_g = game_g.loss(from_g, 1.0, True)
                opt_g.step(loss_g)
                if average is not None:
                    average.update()
                losses.add("loss_g", loss_g)
            step += 1
            if step in check_steps:
                model.generator.eval()
                model.discriminator.eval()
                checkpoint(step, f"epoch {step / batches_per_epoch:.2f} of {config.epochs}")
                model.generator.train()
                model.discriminator.train()
    if average is not None:
        model.generator.load_state_dict(average.module.state_dict())
    model.eval()
    if not team.is_main:  # torchrun: the other ranks trained their shards; rank 0 measured and reports
        return RedactionResult(model, {})
    seconds = time.perf_counter() - started - eval_seconds
    result = _result(model, gan, config, history, film, redaction_set, omega_mask, len(real), queries, seconds)
    result.metrics.update(generator_reported(decay))
    if reference is not None:
        result.metrics.update(fid_reference="valid training samples (v(x) = 1)", fid_reference_size=len(reference))
    model.card.training["generator_ema"] = decay
    return result


def _decay(gan: GANBundle, config: RedactionConfig, generator_steps: int) -> float:
    """The averaged G's decay: the config's, else the pre-trained card's shortened to the run (0: live G)."""
    if config.ema is not None:
        return config.ema
    return short_horizon_decay(card_decay(gan.card.training), generator_steps)


def generator_reported(decay: float) -> dict[str, Any]:
    """Result keys that say which G a run measured and returned: the moving average (with its decay) or live."""
    what = f"moving average of G (decay {decay:.3g})" if decay > 0 else "live G (no moving average)"
    return {"generator": what, "generator_ema": decay}


def _checkpoints(batches_per_epoch: int, epochs: int, first_epoch_checks: int) -> set[int]:
    """Steps after which to measure: `first_epoch_checks` evenly inside epoch 1, then every epoch's end."""
    inside = {max(1, round(batches_per_epoch * k / first_epoch_checks)) for k in range(1, first_epoch_checks)}
    return inside | {batches_per_epoch * e for e in range(1, epochs + 1)}


class LossSums:
    """The players' losses summed on the device between checkpoints: no host round trip per step (`loss.item()`
    after every step used to wait for the device), one read per checkpoint, averaged over torchrun's ranks.

    A non-finite loss poisons its sum, so it is caught at the next checkpoint, on every rank alike (the sums are
    all-reduced first), and the run stops there; the pre-trained model is a separate copy and stays unchanged."""

    NAMES = ("loss_d", "loss_g")
    PLAYERS = {"loss_d": "discriminator", "loss_g": "generator"}

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(len(self.NAMES), dtype=torch.float64, device=device)
        self.counts = [0] * len(self.NAMES)

    def add(self, name: str, loss: torch.Tensor) -> None:
        i = self.NAMES.index(name)
        self.sums[i] += loss.detach().double()
        self.counts[i] += 1

    def read(self, team: Team) -> dict[str, float]:
        """{name: mean since the last read} over every rank (names without steps omitted); then reset."""
        sums = team.mean(self.sums).tolist()
        out = {}
        for name, total, count in zip(self.NAMES, sums, self.counts):
            if not count:
                continue
            if not np.isfinite(total):
                raise NonFiniteError(f"the {self.PLAYERS[name]} loss became {total} during redaction; the run "
                                     "stopped and the pre-trained model is unchanged.",
                                     "Lower the learning rate or raise lambda.")
            out[name] = total / count
        self.sums.zero_()
        self.counts = [0] * len(self.NAMES)
        return out


@torch.no_grad()
def _query_round(model: GANBundle, redaction_set: RedactionSet, omega: torch.Tensor, t: int, gen: torch.Generator,
                 queries: int) -> tuple[torch.Tensor, int]:
    """Alg. 2's query step: draw T samples from the current G, add the invalid ones to Omega'."""
    model.eval()
    z = torch.randn(t, model.latent_dim, generator=gen).to(model.device)
    x = torch.cat([model.generate(z[i : i + 500]).cpu() for i in range(0, t, 500)])
    found = x[redaction_set.invalid(x)]
    return torch.cat([omega, found]), queries + t


def invalidity_keys(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """invalidity_{before,after} with their standard error (_se) and 95% Wilson interval (_lower, _upper)."""
    return {f"invalidity_{when}{suffix}": row[f"invalidity{suffix}"] for when, row in (("before", before),
            ("after", after)) for suffix in ("", "_se", "_lower", "_upper")}


def _result(model: GANBundle, base: GANBundle, config: RedactionConfig, history: list[dict[str, float]],
            film: list[np.ndarray], redaction_set: RedactionSet, omega_mask: torch.Tensor, n_real: int,
            queries: int, seconds: float) -> RedactionResult:
    first, last = history[0], history[-1]
    metrics: dict[str, Any] = {
        "algorithm": config.algorithm, "redaction_set": redaction_set.name,
        **invalidity_keys(first, last),
        "omega_train_size": int(omega_mask.sum()), "real_size": n_real, "seconds": seconds,
        "eval_samples": config.eval_samples,
    }
    if config.algorithm == "validity":
        metrics["validity_queries"] = queries
    for key, short in (("IS[", "is"), ("FID[", "fid")):
        name = next((k for k in first if k.startswith(key)), None)
        if name is not None:
            metrics.update({f"{short}_before": first[name], f"{short}_after": last[name], f"{short}_metric": name})
    model.card.parent = base.card.name
    model.card.metrics = {}
    model.card.training = {"method": "redaction", "config": asdict(config), "redaction_set": redaction_set.name,
                           "seconds": round(seconds, 3)}
    model.card.description = (f"{base.card.name} after {config.algorithm}-based data redaction of "
                              f"{redaction_set.name} (Kong & Chaudhuri 2023), {config.epochs} epochs.")
    frames = np.stack(film, axis=1) if film else None
    return RedactionResult(model, metrics, history, frames)
