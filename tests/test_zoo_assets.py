"""The shipped zoo as a whole: every entry has weights and an honest card, and the zoo stays small.

Each family's own test file re-measures its models against their floors; this file checks the promises that
hold for every entry at once.
"""

from __future__ import annotations

import pytest

from core.models.card import ModelCard
from core.zoo.registry import ZOO, zoo_folder

ZOO_BUDGET_BYTES = 40 * 1024 * 1024


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_ships_weights_and_a_card_that_meets_its_floors(name):
    folder = zoo_folder(name)
    assert (folder / "model.safetensors").is_file(), f"train it: python -m core zoo train {name}"
    card = ModelCard.read(folder / "card.json")
    assert card.name == name and card.family == ZOO[name].family
    assert {k: tuple(v) for k, v in card.floors.items()} == ZOO[name].floors, "card floors differ from the registry"
    assert card.floor_failures() == [], f"{name}'s measured metrics miss its floors"
    assert card.training.get("seconds", 0) > 0, "the card must say how long training took"


def test_the_whole_zoo_fits_the_size_budget():
    total = sum(f.stat().st_size for f in zoo_folder("x").parent.rglob("*") if f.is_file())
    assert total < ZOO_BUDGET_BYTES, f"zoo is {total / 2**20:.1f} MB, budget 40 MB"
