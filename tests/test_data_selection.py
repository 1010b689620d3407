"""Forget/retain selection: expression parsing, selecting by every criterion, clear errors, saving by name."""

from __future__ import annotations

import json

import pytest
import torch

from core.data.base import ImageData
from core.data.home import lethe_home
from core.data.selection import (ExpressionError, Selection, delete_selection, evaluate_expression,
                                 expression_names, list_selections, load_selection, parse_expression, parse_spec,
                                 save_selection, select, selections_dir, split_forget_retain)
from core.errors import EmptySelection, LetheError

NAMES = ("glasses", "smile", "hat")
# all 8 combinations of (glasses, smile, hat), row i = bits of i
TRUTH = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=torch.bool)


def _faces() -> ImageData:
    n = len(TRUTH)
    return ImageData("faces", "train", torch.rand(n, 3, 4, 4), torch.arange(100, 100 + n), labels=torch.arange(n) % 3,
                     attributes=TRUTH, attribute_names=NAMES, identities=torch.arange(n) // 2)


def _eval(text: str) -> list[bool]:
    return evaluate_expression(parse_expression(text), TRUTH, NAMES).tolist()


def _rows(fn) -> list[bool]:
    return [bool(fn(*row.tolist())) for row in TRUTH]


@pytest.mark.parametrize("text, fn", [
    ("glasses", lambda g, s, h: g),
    ("~smile", lambda g, s, h: not s),
    ("glasses & ~smile | hat", lambda g, s, h: (g and not s) or h),  # & binds tighter than |
    ("hat | glasses & smile", lambda g, s, h: h or (g and s)),
    ("glasses & (~smile | hat)", lambda g, s, h: g and (not s or h)),
    ("~(glasses | hat)", lambda g, s, h: not (g or h)),
    ("~~glasses", lambda g, s, h: g),
    ("not (glasses or hat) and smile", lambda g, s, h: not (g or h) and s),
    ("GLASSES & !smile", lambda g, s, h: g and not s),  # names are case-insensitive, ! is not
])
def test_expressions_follow_not_and_or_precedence(text, fn):
    assert _eval(text) == _rows(fn)


def test_parse_tree_and_names():
    tree = parse_expression("glasses & ~smile | hat")
    assert tree == ("or", ("and", ("attr", "glasses"), ("not", ("attr", "smile"))), ("attr", "hat"))
    assert expression_names(tree) == ["glasses", "smile", "hat"]


@pytest.mark.parametrize("text, where", [
    ("", "empty"), ("glasses &", "end"), ("(glasses | hat", "')'"), ("glasses hat", "unexpected token"),
    ("glasses | | hat", "position 10"), ("glasses; import os", "';'"), ("__import__('os')", "position 11"),
])
def test_malformed_expressions_raise_with_position(text, where):
    with pytest.raises(ExpressionError) as err:
        parse_expression(text)
    assert where in str(err.value)


def test_unknown_attribute_lists_the_known_ones():
    with pytest.raises(LetheError) as err:
        _eval("glases & smile")
    assert "glases" in err.value.message and "glasses, smile, hat" in err.value.hint


def test_select_by_each_criterion():
    data = _faces()
    assert select(data, Selection("faces", ids=[100, 107])).tolist() == [i in (0, 7) for i in range(8)]
    assert select(data, Selection("faces", labels=[0])).tolist() == [i % 3 == 0 for i in range(8)]
    assert select(data, Selection("faces", identities=[1])).tolist() == [i // 2 == 1 for i in range(8)]
    assert select(data, Selection("faces", attribute="hat & ~smile")).tolist() == _rows(lambda g, s, h: h and not s)
    first_half = Selection("faces", predicate=lambda d: d.ids < 104)
    assert select(data, first_half).tolist() == [i < 4 for i in range(8)]


def test_criteria_combine_with_all_or_any():
    data = _faces()
    both = Selection("faces", labels=[0], attribute="hat")
    either = Selection("faces", labels=[0], attribute="hat", mode="any")
    assert select(data, both).tolist() == [i % 3 == 0 and i & 1 for i in range(8)]
    assert select(data, either).tolist() == [i % 3 == 0 or bool(i & 1) for i in range(8)]
    assert both.kind == "label&attribute" and either.kind == "label|attribute"


def test_split_forget_retain_partitions_the_data():
    data = _faces()
    forget, retain = split_forget_retain(data, Selection("faces", attribute="glasses"))
    assert sorted(forget.ids.tolist() + retain.ids.tolist()) == data.ids.tolist()
    assert forget.attributes[:, 0].all() and not retain.attributes[:, 0].any()


def test_empty_forget_set_raises_with_a_hint():
    with pytest.raises(EmptySelection) as err:
        select(_faces(), Selection("faces", labels=[5]))
    assert "labels present: 0, 1, 2" in err.value.hint
    with pytest.raises(EmptySelection) as err:
        select(_faces(), Selection("faces", attribute="glasses & ~glasses"))
    assert "glasses=4" in err.value.hint


def test_selecting_everything_leaves_nothing_to_retain():
    with pytest.raises(EmptySelection, match="nothing is left to retain"):
        split_forget_retain(_faces(), Selection("faces", attribute="glasses | ~glasses"))
    forget, retain = split_forget_retain(_faces(), Selection("faces", labels=[0, 1, 2]), require_retain=False)
    assert len(forget) == 8 and len(retain) == 0


def test_wrong_dataset_missing_column_and_bad_predicate_are_lethe_errors():
    data = _faces()
    with pytest.raises(LetheError, match="'mnist'"):
        select(data, Selection("mnist", labels=[0]))
    with pytest.raises(LetheError, match="no attributes"):
        select(ImageData("faces", "train", torch.rand(2, 1), torch.arange(2)), Selection("faces", attribute="hat"))
    with pytest.raises(LetheError, match="bool tensor"):
        select(data, Selection("faces", predicate=lambda d: d.ids.tolist()))
    with pytest.raises(LetheError, match="at least one criterion"):
        Selection("faces")
    with pytest.raises(ExpressionError):
        Selection("faces", attribute="hat &")


def test_save_list_load_delete_round_trip():
    sel = Selection("faces", "test", ids=[3, 1], labels=[2], attribute="glasses & ~smile", mode="any")
    path = save_selection("my-set_1", sel, "a test set")
    assert path.parent == selections_dir() == lethe_home() / "selections"
    assert [p.name for p in path.parent.iterdir()] == ["my-set_1.json"]  # no temporary files left behind
    assert json.loads(path.read_text())["description"] == "a test set"
    save_selection("another", Selection("faces", identities=[4]))
    assert list_selections() == ["another", "my-set_1"]
    assert load_selection("my-set_1") == sel
    delete_selection("another")
    assert list_selections() == ["my-set_1"]
    with pytest.raises(LetheError) as err:
        load_selection("another")
    assert "my-set_1" in err.value.hint


def test_predicates_and_bad_names_cannot_be_saved():
    with pytest.raises(LetheError, match="predicate"):
        save_selection("p", Selection("faces", predicate=lambda d: d.ids > 0))
    for bad in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(LetheError, match="bad selection name"):
            save_selection(bad, Selection("faces", labels=[0]))


def test_corrupt_saved_file_is_a_lethe_error():
    selections_dir().mkdir(parents=True)
    (selections_dir() / "broken.json").write_text("{not json")
    (selections_dir() / "odd.json").write_text(json.dumps({"dataset": "faces", "labels": [1], "evil": 1}))
    with pytest.raises(LetheError, match="not valid JSON"):
        load_selection("broken")
    with pytest.raises(LetheError, match="evil"):
        load_selection("odd")


@pytest.mark.parametrize("spec, expected", [
    ("label=0", dict(labels=(0,))),
    ("ids=1,2,3", dict(ids=(1, 2, 3))),
    ("ids=5-8, 10", dict(ids=(5, 6, 7, 8, 10))),
    ("identity=17", dict(identities=(17,))),
    ("attr=glasses & ~smile", dict(attribute="glasses & ~smile")),
    ("label=1; attr=hat", dict(labels=(1,), attribute="hat")),
])
def test_cli_specs(spec, expected):
    sel = parse_spec(spec, "faces", "test")
    assert sel == Selection("faces", "test", **expected)
    assert parse_spec(sel.to_spec(), "faces", "test") == sel


def test_saved_spec_loads_the_named_selection_for_the_right_dataset():
    save_selection("sevens", Selection("mnist", labels=[7]))
    assert parse_spec("saved=sevens", "mnist") == Selection("mnist", labels=[7])
    assert parse_spec("saved=sevens") == Selection("mnist", labels=[7])
    with pytest.raises(LetheError, match="is for 'mnist'"):
        parse_spec("saved=sevens", "faces")


@pytest.mark.parametrize("spec, message", [
    ("colour=red", "unknown selection key"), ("label", "bad selection spec"), ("label=a", "not an integer"),
    ("ids=9-3", "bad range"), ("label=1;label=2", "given twice"), ("attr=glasses &&", "expected an attribute"),
    ("", "empty selection spec"),
])
def test_bad_cli_specs_say_what_to_write(spec, message):
    with pytest.raises(LetheError, match=message):
        parse_spec(spec, "faces")


def test_real_dataset_selection_by_attribute_and_identity():
    from core.data import load

    data = load("synthfaces", "test")
    forget, retain = split_forget_retain(data, parse_spec("identity=17", "synthfaces", "test"))
    assert len(forget) == 4 and (forget.identities == 17).all() and len(retain) == 1996
    mask = select(data, parse_spec("attr=glasses & ~smile", "synthfaces"))
    a = data.attributes
    assert torch.equal(mask, a[:, 0] & ~a[:, 1])
