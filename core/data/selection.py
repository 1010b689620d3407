"""Forget / retain selection shared by every method.

A `Selection` names which samples of a dataset split to forget; the rest is the retain set. It selects by sample
ids (stable row numbers, see `core.data.base`), by label, by identity, by an attribute expression such as
`glasses & ~smile | hat`, or by a predicate function (API only: a function cannot be saved). Several criteria in
one selection are combined with `mode="all"` (every criterion holds) or `mode="any"` (at least one holds).

Selections are plain JSON (`to_dict` / `from_dict`) so a run config records exactly what was forgotten, and can be
saved by name under `<LETHE_HOME>/selections/`. `parse_spec` reads the command line's `--forget SPEC`:
`label=0`, `ids=1,2,10-20`, `identity=17`, `attr=glasses & ~smile`, `saved=NAME`, several joined by `;` (all hold).

Attribute expressions have their own small parser (never `eval`): names, `~`/`not`, `&`/`and`, `|`/`or`,
parentheses; precedence `~` > `&` > `|`, so `a & ~b | c` is `(a & (~b)) | c`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

import torch

from core.data.base import ImageData
from core.data.home import lethe_home
from core.errors import EmptySelection, LetheError

# --- attribute expressions -----------------------------------------------------------------------------------

Expr = Union[tuple[str, str], tuple[str, "Expr"], tuple[str, "Expr", "Expr"]]
_TOKEN = re.compile(r"\s*(?:(?P<op>[&|~()!])|(?P<name>[A-Za-z0-9_]+)|(?P<bad>\S))")
_WORD_OPS = {"and": "&", "or": "|", "not": "~"}
MAX_EXPRESSION_TOKENS = 256  # names and operators in one attribute expression
MAX_EXPRESSION_DEPTH = 32  # nested parentheses and negations
MAX_SPEC_IDS = 1_000_000  # numbers one id / label / identity list may expand to (checked before expanding)
MAX_ID = 2**31 - 1


class ExpressionError(LetheError):
    """An attribute expression that does not parse or names an unknown attribute."""


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    for m in _TOKEN.finditer(text):
        if m.group("bad"):
            raise ExpressionError(f"unexpected character {m.group('bad')!r} at position {m.start('bad')} in "
                                  f"{_quote(text)}.", "Use attribute names with & (and), | (or), ~ (not) and parentheses.")
        if m.group("op"):
            out.append(("op", "~" if m.group("op") == "!" else m.group("op"), m.start("op")))
        elif m.group("name"):
            word = m.group("name")
            kind = "op" if word.lower() in _WORD_OPS else "name"
            out.append((kind, _WORD_OPS.get(word.lower(), word), m.start("name")))
    return out


def _quote(text: str, limit: int = 60) -> str:
    """`text` quoted for a message, cut to `limit` characters (a hostile spec must not flood the message)."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def parse_expression(text: str) -> Expr:
    """Parse an attribute expression into a tree of ("attr", name), ("not", e), ("and", a, b), ("or", a, b).

    At most MAX_EXPRESSION_TOKENS tokens nested at most MAX_EXPRESSION_DEPTH deep, so parsing and evaluating
    (both recursive) stay far from Python's recursion limit whatever the input."""
    if len(text) > 8 * MAX_EXPRESSION_TOKENS:
        raise ExpressionError(f"the attribute expression is {len(text)} characters long.",
                              f"Write at most {MAX_EXPRESSION_TOKENS} names and operators.")
    toks = _tokens(text)
    if not toks:
        raise ExpressionError("empty attribute expression.", "Write for example 'glasses & ~smile'.")
    if len(toks) > MAX_EXPRESSION_TOKENS:
        raise ExpressionError(f"the attribute expression {_quote(text)} has {len(toks)} names and operators.",
                              f"Write at most {MAX_EXPRESSION_TOKENS}; save a long selection by ids instead.")
    pos = 0
    depth = 0

    def deeper() -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionError(f"the attribute expression {_quote(text)} nests more than "
                                  f"{MAX_EXPRESSION_DEPTH} parentheses or negations deep.",
                                  "Simplify it: ~~a is a, and (a) is a.")

    def peek() -> tuple[str, str, int] | None:
        return toks[pos] if pos < len(toks) else None

    def fail(what: str) -> ExpressionError:
        tok = peek()
        where = f"at position {tok[2]} ({tok[1]!r})" if tok else "at the end"
        return ExpressionError(f"{what} {where} in {text!r}.",
                               "Expressions look like 'glasses & ~smile | hat' or 'not (beard or hat)'.")

    def parse_or() -> Expr:
        nonlocal pos
        left = parse_and()
        while (tok := peek()) and tok[:2] == ("op", "|"):
            pos += 1
            left = ("or", left, parse_and())
        return left

    def parse_and() -> Expr:
        nonlocal pos
        left = parse_not()
        while (tok := peek()) and tok[:2] == ("op", "&"):
            pos += 1
            left = ("and", left, parse_not())
        return left

    def parse_not() -> Expr:
        nonlocal pos
        tok = peek()
        nonlocal depth
        if tok and tok[:2] == ("op", "~"):
            pos += 1
            deeper()
            inner = parse_not()
            depth -= 1
            return ("not", inner)
        return parse_atom()

    def parse_atom() -> Expr:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise fail("expected an attribute name")
        if tok[0] == "name":
            pos += 1
            return ("attr", tok[1])
        if tok[1] == "(":
            nonlocal depth
            pos += 1
            deeper()
            inner = parse_or()
            depth -= 1
            if not (peek() and peek()[:2] == ("op", ")")):
                raise fail("expected ')'")
            pos += 1
            return inner
        raise fail("expected an attribute name or '('")

    tree = parse_or()
    if pos != len(toks):
        raise fail("unexpected token")
    return tree


def expression_names(expr: Expr) -> list[str]:
    """Attribute names used in `expr`, in order of appearance."""
    if expr[0] == "attr":
        return [expr[1]]
    return [n for sub in expr[1:] for n in expression_names(sub)]


def attribute_index(name: str, known: tuple[str, ...]) -> int:
    """Column of attribute `name` among `known` (exact, else case-insensitive); ExpressionError if unknown."""
    if name in known:
        return known.index(name)
    folded = [k.lower() for k in known]
    if name.lower() in folded:
        return folded.index(name.lower())
    raise ExpressionError(f"unknown attribute {name!r}.",
                          f"Known attributes: {', '.join(known) if known else '(this dataset has none)'}.")


def evaluate_expression(expr: Expr, attributes: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Boolean mask (N) of rows of `attributes` (bool N x A, columns named `names`) where `expr` holds."""
    op = expr[0]
    if op == "attr":
        return attributes[:, attribute_index(expr[1], names)].bool()
    if op == "not":
        return ~evaluate_expression(expr[1], attributes, names)
    left, right = evaluate_expression(expr[1], attributes, names), evaluate_expression(expr[2], attributes, names)
    return left & right if op == "and" else left | right


# --- selections ----------------------------------------------------------------------------------------------

Predicate = Callable[[ImageData], torch.Tensor]


@dataclass(frozen=True)
class Selection:
    """Which samples of `dataset`/`split` to forget. Unset criteria are None; at least one must be set.

    `predicate(data) -> bool mask` is for API users; it is not saved (`to_dict` refuses)."""

    dataset: str
    split: str = "train"
    ids: tuple[int, ...] | None = None
    labels: tuple[int, ...] | None = None
    identities: tuple[int, ...] | None = None
    attribute: str | None = None
    predicate: Predicate | None = None
    mode: str = "all"

    def __post_init__(self) -> None:
        for key in ("ids", "labels", "identities"):
            value = getattr(self, key)
            if value is not None:
                if len(value) > MAX_SPEC_IDS:
                    raise LetheError(f"a selection may name at most {MAX_SPEC_IDS:,} {key}, got {len(value):,}.",
                                     "Select by label or attribute instead.")
                object.__setattr__(self, key, tuple(int(v) for v in value))
        if self.mode not in ("all", "any"):
            raise LetheError(f"unknown selection mode {self.mode!r}.", "Use 'all' (every criterion) or 'any'.")
        if not self.criteria:
            raise LetheError("a selection needs at least one criterion.",
                             "Set ids, labels, identities, attribute or predicate (e.g. --forget label=0).")
        if self.attribute is not None:
            parse_expression(self.attribute)

    @property
    def criteria(self) -> tuple[str, ...]:
        """Names of the criteria that are set, e.g. ('labels', 'attribute')."""
        return tuple(k for k in ("ids", "labels", "identities", "attribute", "predicate")
                     if getattr(self, k) is not None)

    @property
    def kind(self) -> str:
        """'ids', 'label', 'identity', 'attribute', 'predicate', or a combination like 'label&attribute'."""
        names = {"ids": "ids", "labels": "label", "identities": "identity", "attribute": "attribute",
                 "predicate": "predicate"}
        return ("&" if self.mode == "all" else "|").join(names[c] for c in self.criteria)

    def _part(self, criterion: str, brief: bool = False) -> str:
        """`key=value` of one criterion; number lists compacted to ranges (`3-7`), and with `brief` cut to a few
        pieces so messages stay short."""
        value = getattr(self, criterion)
        if criterion == "attribute":
            return f"attr={value}"
        if criterion == "predicate":
            return getattr(value, "__name__", "predicate") + "(...)"
        key = {"ids": "ids", "labels": "label", "identities": "identity"}[criterion]
        pieces = _ranges(value)
        if brief and len(pieces) > 6:
            pieces = pieces[:5] + [f"... ({len(value):,} in all)"]
        return f"{key}=" + ",".join(pieces)

    def to_spec(self) -> str:
        """The command-line spec that reproduces this selection (criteria joined by ';' all hold)."""
        if self.predicate is not None:
            raise LetheError("a predicate selection has no command-line form.", "Select by ids, label or attribute.")
        if self.mode == "any" and len(self.criteria) > 1:
            raise LetheError("a selection combining criteria with mode='any' has no command-line spec.",
                             "Save it by name and pass saved=NAME.")
        return ";".join(self._part(c) for c in self.criteria)

    def describe(self) -> str:
        """One line for people, e.g. 'label=0 of mnist/train'."""
        joiner = " and " if self.mode == "all" else " or "
        return f"{joiner.join(self._part(c, brief=True) for c in self.criteria)} of {self.dataset}/{self.split}"

    def to_dict(self) -> dict:
        """JSON-ready dict (unset criteria omitted)."""
        if self.predicate is not None:
            raise LetheError("a selection with a predicate function cannot be saved or serialised.",
                             "Express it with ids (e.g. Selection(dataset, ids=...) from the mask), label or attribute.")
        out: dict = {"dataset": self.dataset, "split": self.split, "mode": self.mode}
        for key in ("ids", "labels", "identities", "attribute"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Selection":
        """Inverse of `to_dict`; unknown keys are an error (they would be silently ignored otherwise)."""
        allowed = {"dataset", "split", "mode", "ids", "labels", "identities", "attribute"}
        extra = set(d) - allowed - {"version", "description"}
        if extra or "dataset" not in d:
            raise LetheError(f"not a selection: unexpected keys {sorted(extra)} or no 'dataset'.",
                             f"A saved selection has keys among {sorted(allowed)}.")
        return cls(**{k: v for k, v in d.items() if k in allowed})


def _ranges(values: tuple[int, ...]) -> list[str]:
    """Numbers as comma pieces with consecutive runs joined: (1, 2, 3, 7) -> ["1-3", "7"] (order kept)."""
    pieces: list[str] = []
    start = prev = None
    for v in values:
        if prev is not None and v == prev + 1:
            prev = v
            continue
        if start is not None:
            pieces.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = v
    if start is not None:
        pieces.append(str(start) if start == prev else f"{start}-{prev}")
    return pieces


def _present(values: torch.Tensor, limit: int = 12) -> str:
    u = torch.unique(values).tolist()
    return ", ".join(map(str, u[:limit])) + (f", ... ({len(u)} values)" if len(u) > limit else "")


def _mask_for(data: ImageData, sel: Selection, criterion: str) -> torch.Tensor:
    n = len(data)
    if criterion == "ids":
        return torch.isin(data.ids, torch.tensor(sel.ids, dtype=data.ids.dtype))
    if criterion == "labels":
        if data.labels is None:
            raise LetheError(f"{data.name} has no labels to select by.", "Select by ids, attribute or identity.")
        return torch.isin(data.labels, torch.tensor(sel.labels, dtype=data.labels.dtype))
    if criterion == "identities":
        if data.identities is None:
            raise LetheError(f"{data.name} has no identities to select by.", "Select by ids, label or attribute.")
        return torch.isin(data.identities, torch.tensor(sel.identities, dtype=data.identities.dtype))
    if criterion == "attribute":
        if data.attributes is None:
            raise LetheError(f"{data.name} has no attributes to select by.",
                             "Attribute expressions work on synthfaces and celeba; select by ids or label here.")
        return evaluate_expression(parse_expression(sel.attribute), data.attributes, data.attribute_names)
    mask = sel.predicate(data)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != (n,):
        raise LetheError("a selection predicate must return a bool tensor with one entry per sample.",
                         f"Got {type(mask).__name__} {getattr(mask, 'dtype', '')} {tuple(getattr(mask, 'shape', ()))}"
                         f", expected torch.bool of shape ({n},).")
    return mask


def _empty_hint(data: ImageData, sel: Selection) -> str:
    hints = []
    if sel.labels is not None and data.labels is not None:
        hints.append(f"labels present: {_present(data.labels)}")
    if sel.identities is not None and data.identities is not None:
        hints.append(f"identities present: {_present(data.identities)}")
    if sel.ids is not None and len(data):
        hints.append(f"ids in this split range from {int(data.ids.min())} to {int(data.ids.max())}")
    if sel.attribute is not None and data.attributes is not None:
        counts = data.attributes.sum(0).tolist()
        used = {data.attribute_names[attribute_index(a, data.attribute_names)]
                for a in expression_names(parse_expression(sel.attribute))}
        hints.append("attribute counts: " + ", ".join(f"{a}={int(c)}" for a, c in zip(data.attribute_names, counts)
                                                       if a in used))
    if sel.mode == "all" and len(sel.criteria) > 1:
        hints.append("criteria are combined with 'all'; try mode='any'")
    return ("; ".join(hints) + ".") if hints else "Check the selection against the dataset."


def select(data: ImageData, selection: Selection) -> torch.Tensor:
    """Boolean mask over `data`'s rows: True = forget. Raises EmptySelection when nothing matches."""
    if data.name != selection.dataset:
        raise LetheError(f"the selection is for {selection.dataset!r} but the data is {data.name!r}.",
                         f"Load {selection.dataset!r} or make a selection for {data.name!r}.")
    masks = [_mask_for(data, selection, c) for c in selection.criteria]
    mask = masks[0]
    for m in masks[1:]:
        mask = mask & m if selection.mode == "all" else mask | m
    if not bool(mask.any()):
        raise EmptySelection(f"no samples match {selection.describe()}.",
                             _empty_hint(data, selection))
    return mask


def split_forget_retain(data: ImageData | None, selection: Selection, require_retain: bool = True,
                        root: str | None = None) -> tuple[ImageData, ImageData]:
    """(forget, retain) subsets of `data` (loaded from the selection's dataset/split when None).

    With `require_retain`, selecting every sample is an EmptySelection too: methods fine-tune on what remains."""
    if data is None:
        from core.data import load

        data = load(selection.dataset, selection.split, root=root)
    mask = select(data, selection)
    if require_retain and bool(mask.all()):
        raise EmptySelection(f"{selection.describe()} selects all {len(data)} samples; nothing is left to retain.",
                             "Narrow the selection (for example one label or an attribute conjunction).")
    return data.subset(mask), data.subset(~mask)


# --- named selections on disk --------------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def selections_dir() -> Path:
    return lethe_home() / "selections"


def _path(name: str) -> Path:
    if not _NAME.match(name):
        raise LetheError(f"bad selection name {name!r}.",
                         "Use letters, digits, '_', '-', '.' (not starting with '.' or '-'), at most 100 characters.")
    return selections_dir() / f"{name}.json"


def save_selection(name: str, selection: Selection, description: str = "") -> Path:
    """Save `selection` as `name` (overwriting), atomically: a crash never leaves half a file."""
    path = _path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"version": 1, "description": description or selection.describe(), **selection.to_dict()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=2)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def list_selections() -> list[str]:
    """Names of saved selections, sorted."""
    folder = selections_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_selection(name: str) -> Selection:
    """The saved selection `name`; an unknown name lists the saved ones."""
    path = _path(name)
    if not path.exists():
        known = list_selections()
        raise LetheError(f"no saved selection {name!r} in {selections_dir()}.",
                         f"Saved selections: {', '.join(known)}." if known else "No selections are saved yet.")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LetheError(f"saved selection {name!r} is not valid JSON ({e}).", f"Delete or fix {path}.") from e
    return Selection.from_dict(payload)


def delete_selection(name: str) -> None:
    """Remove the saved selection `name` (an unknown name is an error)."""
    path = _path(name)
    if not path.exists():
        raise LetheError(f"no saved selection {name!r} to delete.", f"Saved selections: {', '.join(list_selections())}.")
    path.unlink()


# --- command-line specs --------------------------------------------------------------------------------------

def _ints(key: str, text: str, limit: int | None = None) -> tuple[int, ...]:
    """The numbers of a list such as `1,2,10-20`, each below `limit` when given (e.g. the dataset's size). Ranges
    are checked before they are expanded, and the whole list may hold at most MAX_SPEC_IDS numbers."""
    ranges: list[tuple[int, int]] = []
    total = 0
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"(-?\d{1,12})(?:\s*-\s*(\d{1,12}))?", part)
        if not m:
            raise LetheError(f"bad {key} list {_quote(text)}: {_quote(part, 30)} is not an integer or a range a-b.",
                             f"Write for example {key}=1,2,10-20.")
        lo, hi = int(m.group(1)), int(m.group(2)) if m.group(2) else int(m.group(1))
        if hi < lo:
            raise LetheError(f"bad range {_quote(part, 30)} in {key}.", "Ranges go low-high, e.g. 10-20.")
        top = MAX_ID if limit is None else limit - 1
        if lo < 0 or hi > top:
            where = f"this dataset has {key} 0 to {top}" if limit is not None else f"{key} go from 0 to {MAX_ID}"
            raise LetheError(f"{key} {_quote(part, 30)} is out of range: {where}.", f"Pick {key} between 0 and {top}.")
        total += hi - lo + 1
        if total > MAX_SPEC_IDS:
            raise LetheError(f"the {key} list {_quote(text)} names more than {MAX_SPEC_IDS:,} numbers.",
                             f"Select at most {MAX_SPEC_IDS:,} at once, or select by label or attribute.")
        ranges.append((lo, hi))
    if not ranges:
        raise LetheError(f"empty {key} list.", f"Write for example {key}=0 or {key}=1,2,3.")
    return tuple(i for lo, hi in ranges for i in range(lo, hi + 1))


def spec_limits(data: ImageData) -> dict[str, int]:
    """Exclusive upper bounds for the numbers of a spec on `data`: ids (rows of the full dataset), labels and
    identities; pass to `parse_spec(..., limits=...)` so a range is checked against the data before expanding."""
    limits = {"ids": int(data.ids.max()) + 1 if len(data) else 0}
    if data.labels is not None and len(data):
        limits["labels"] = max(int(data.labels.max()) + 1, len(data.class_names or ()))
    if data.identities is not None and len(data):
        limits["identities"] = int(data.identities.max()) + 1
    return limits


def parse_spec(spec: str, dataset: str | None = None, split: str = "train",
               limits: dict[str, int] | None = None) -> Selection:
    """Parse a `--forget SPEC`: `label=0`, `ids=1,2,3`, `identity=17`, `attr=glasses & ~smile`, `saved=NAME`,
    or several joined by `;` (all must hold). `dataset` may be omitted only for `saved=NAME`. `limits` (from
    `spec_limits(data)`) bounds ids, labels and identities by the data before any range is expanded."""
    fields: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        key, eq, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not eq or not value:
            raise LetheError(f"bad selection spec {_quote(part)}.",
                             "Use label=0, ids=1,2,3, identity=17, attr=glasses & ~smile or saved=NAME.")
        if key == "saved":
            saved = load_selection(value)
            if dataset is not None and saved.dataset != dataset:
                raise LetheError(f"saved selection {value!r} is for {saved.dataset!r}, not {dataset!r}.",
                                 "Pick a selection made for this model's dataset.")
            if len(spec.split(";")) > 1:
                raise LetheError("saved=NAME cannot be combined with other criteria.", "Save the combination instead.")
            return saved
        target = {"label": "labels", "labels": "labels", "ids": "ids", "id": "ids", "identity": "identities",
                  "identities": "identities", "attr": "attribute", "attribute": "attribute"}.get(key)
        if target is None:
            raise LetheError(f"unknown selection key {_quote(key, 30)} in {_quote(spec)}.",
                             "Keys: label, ids, identity, attr, saved.")
        if target in fields:
            raise LetheError(f"{key} given twice in {_quote(spec)}.", "Give each key once (lists use commas).")
        fields[target] = value if target == "attribute" else _ints(key, value, (limits or {}).get(target))
    if dataset is None:
        raise LetheError(f"selection {_quote(spec)} needs a dataset.", "Pass the dataset of the model (or use saved=NAME).")
    if not fields:
        raise LetheError("empty selection spec.", "Use label=0, ids=1,2,3, identity=17, attr=... or saved=NAME.")
    return Selection(dataset, split, **fields)


__all__ = [
    "ExpressionError", "Selection", "delete_selection", "evaluate_expression", "expression_names",
    "list_selections", "load_selection", "parse_expression", "parse_spec", "save_selection", "select",
    "spec_limits", "split_forget_retain",
]
