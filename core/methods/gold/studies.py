"""GOLD's experiments as independent jobs for `core.runs.executor.run_jobs` (the notebook's tables over seeds).

Each function names its model and data by spec, loads them in whichever process runs it, and returns plain data
(no model), so a `functools.partial` of it pickles small and runs alike here, in a spawn worker or on Ray:

    run_jobs([partial(reweight_study, "toy-acgan", config, seed) for seed in (0, 1, 2)], workers=2)
"""

from __future__ import annotations

from core.data import load
from core.methods.gold.measure import rejection_gain
from core.methods.gold.training import ActiveConfig, ReweightConfig, active_learning, reweight
from core.models.spec import load_model


def _model_and_data(model: str, dataset: str | None):
    gan = load_model(model)
    dataset = dataset or gan.card.data["dataset"]
    return gan, load(dataset, "train"), load(dataset, "test")


def reweight_study(model: str, config: ReweightConfig, seed: int, dataset: str | None = None) -> dict:
    """Table 1 / Fig. 1b-c for one seed: {"metrics", "history"} of `reweight` on the model's (or `dataset`'s)
    train split, fitting capacity on its test split."""
    gan, train, test = _model_and_data(model, dataset)
    out = reweight(gan, train, test, config, seed=seed)
    return {"metrics": out["metrics"], "history": out["history"]}


def active_study(model: str, config: ActiveConfig, seed: int, dataset: str | None = None) -> dict:
    """Fig. 3 / 4 for one seed and `config.strategy`: {"history": one row per round, "rounds": per pool image the
    round its label became known}."""
    gan, train, test = _model_and_data(model, dataset)
    out = active_learning(gan, train, test, config, seed=seed)
    return {"history": out["history"], "rounds": out["rounds"]}


def rejection_study(model: str, p: float, n: int, epochs: int, burn_in_size: int, seed: int) -> dict:
    """Table 3 for one seed: fitting capacity of n plain vs n GOLD-rejection samples (`rejection_gain`)."""
    gan = load_model(model)
    test = load(gan.card.data["dataset"], "test")
    return rejection_gain(gan, test.x, test.labels, p, n=n, epochs=epochs, burn_in_size=burn_in_size, seed=seed)
