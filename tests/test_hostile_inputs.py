"""Hostile inputs (issue 10): a model file never runs code or exhausts the machine, and every bad input ends as a
clear `error:` / `hint:` (exit code 2 on the command line) instead of a traceback.

Code-execution cases use a factory in a temp module that writes a marker file when imported or called: the tests
prove the marker never appears. Memory cases use cards whose hyperparameters would allocate gigabytes if built.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.data.selection import (MAX_EXPRESSION_DEPTH, ExpressionError, Selection, parse_expression, parse_spec,
                                 spec_limits)
from core.errors import BadCheckpoint, LetheError, ModelSpecError, ShapeMismatch
from core.models import load_bundle, load_model, save_bundle
from core.models.archive import unpack_model, zip_model
from core.models.trust import ENV, UntrustedFactory, trusting

EVIL_MODULE = '''
from pathlib import Path
Path({marker!r}).write_text("imported")

def build(**kwargs):
    Path({marker!r}).write_text("called")
    raise SystemExit("a factory named by a card ran")
'''


@pytest.fixture
def evil(tmp_path, monkeypatch):
    """An importable module `lethe_evil_mod` whose import or factory writes `marker`; returns the marker path."""
    marker = tmp_path / "marker"
    pkg = tmp_path / "evil_site"
    pkg.mkdir()
    (pkg / "lethe_evil_mod.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.delenv(ENV, raising=False)
    yield marker
    sys.modules.pop("lethe_evil_mod", None)


def _saved(tmp_path: Path, name: str = "m", spec: str = "toy-gan") -> Path:
    return save_bundle(load_model(spec, "cpu"), tmp_path / name)


def _edit_card(folder: Path, **changes) -> Path:
    card = json.loads((folder / "card.json").read_text())
    for key, value in changes.items():
        if key == "hparams_update":
            card["hparams"].update(value)
        else:
            card[key] = value
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def _cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


# --- code execution -------------------------------------------------------------------------------------------

def test_a_card_naming_os_system_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    folder = _edit_card(_saved(tmp_path), architecture="factory:os:system",
                        hparams={"command": f"touch {marker}"})
    with pytest.raises(UntrustedFactory, match="--trust-factory os") as info:
        load_bundle(folder)
    assert "LETHE_TRUST_FACTORIES=os" in info.value.hint
    assert not marker.exists()


def test_a_card_naming_a_factory_neither_imports_nor_calls_it(tmp_path, evil):
    folder = _edit_card(_saved(tmp_path), architecture="factory:lethe_evil_mod:build", hparams={})
    with pytest.raises(UntrustedFactory):
        load_model(str(folder), "cpu")
    assert not evil.exists() and "lethe_evil_mod" not in sys.modules


def test_an_upload_naming_a_factory_is_refused_and_runs_nothing(tmp_path, evil):
    folder = _edit_card(_saved(tmp_path), architecture="factory:lethe_evil_mod:build", hparams={})
    unpacked = unpack_model({"m.zip": zip_model(folder)}, tmp_path / "uploads")
    with pytest.raises(UntrustedFactory):
        load_bundle(unpacked, label="the uploaded model")
    assert not evil.exists()


def test_the_command_line_refuses_a_factory_card_with_exit_2_and_names_the_flag(tmp_path, evil, capsys):
    folder = _edit_card(_saved(tmp_path), architecture="factory:lethe_evil_mod:build", hparams={})
    code, err = _cli(capsys, "sample", str(folder), "--out", str(tmp_path / "s.npy"))
    assert code == 2 and "error:" in err and "--trust-factory lethe_evil_mod" in err
    assert not evil.exists()


def test_trusting_the_module_deliberately_lets_the_factory_run(tmp_path, evil, monkeypatch):
    folder = _edit_card(_saved(tmp_path), architecture="factory:lethe_evil_mod:build", hparams={})
    with trusting(["lethe_evil_mod"]), pytest.raises(ModelSpecError, match="failed"):
        load_bundle(folder)  # trusted: imported and called (and its SystemExit is reported, not propagated)
    assert evil.read_text() == "called"


def test_the_environment_variable_trusts_a_package_and_its_modules(monkeypatch):
    from core.models.trust import is_trusted

    monkeypatch.setenv(ENV, "examples, other.pkg")
    assert is_trusted("examples.my_gan") and is_trusted("other.pkg") and not is_trusted("examplesx")
    monkeypatch.delenv(ENV)
    assert not is_trusted("examples.my_gan")


# --- memory and CPU -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hparams", [{"g_hidden": 10**9}, {"latent_dim": 10**9}])
def test_huge_hyperparameters_are_refused_before_building(tmp_path, hparams):
    folder = _edit_card(_saved(tmp_path), hparams_update=hparams)
    with pytest.raises(BadCheckpoint, match="must be between"):
        load_bundle(folder)


def test_a_flow_with_ten_million_couplings_is_refused_before_building(tmp_path):
    folder = _edit_card(_saved(tmp_path, spec="toy-flow"), hparams_update={"couplings": 10**7})
    with pytest.raises(BadCheckpoint, match="couplings.*between 1 and 256"):
        load_bundle(folder)


def test_in_range_hyperparameters_cannot_allocate_more_than_the_weights_justify(tmp_path):
    # g_hidden 16384 is within the schema, but a 2-layer MLP that wide needs ~1 GB more than toy-gan's 3 KB
    folder = _edit_card(_saved(tmp_path), hparams_update={"g_hidden": 16384, "d_hidden": 16384, "dim": 1024})
    with pytest.raises(BadCheckpoint, match="more memory than its weights file justifies"):
        load_bundle(folder)


def test_weights_of_the_right_size_but_another_shape_are_a_shape_mismatch(tmp_path):
    folder = _edit_card(_saved(tmp_path), hparams_update={"g_hidden": 33})
    with pytest.raises((ShapeMismatch, BadCheckpoint)):
        load_bundle(folder)


@pytest.mark.parametrize("bad", [{"hparams": None}, {"hparams": [1]}, {"data_shape": "big"}, {"name": 3},
                                 {"seed": "x"}])
def test_card_fields_of_the_wrong_type_are_bad_checkpoints(tmp_path, bad):
    folder = _edit_card(_saved(tmp_path), **bad)
    with pytest.raises(BadCheckpoint, match="bad"):
        load_bundle(folder)


@pytest.mark.parametrize("hparams", [{"g_hidden": None}, {"g_hidden": "32"}, {"g_hidden": 3.5}, {"g_hidden": True}])
def test_hyperparameters_of_the_wrong_type_or_null_are_bad_checkpoints(tmp_path, hparams):
    folder = _edit_card(_saved(tmp_path), hparams_update=hparams)
    with pytest.raises(BadCheckpoint, match="g_hidden"):
        load_bundle(folder)


def test_unknown_hyperparameters_are_refused(tmp_path):
    folder = _edit_card(_saved(tmp_path), hparams_update={"surprise": 1})
    with pytest.raises(BadCheckpoint, match="does not take: 'surprise'"):
        load_bundle(folder)


def test_a_family_that_does_not_match_the_architecture_is_refused(tmp_path):
    folder = _edit_card(_saved(tmp_path), family="flow")
    with pytest.raises(BadCheckpoint, match="family 'flow'.*is a gan"):
        load_bundle(folder)


def test_a_safetensors_header_claiming_more_than_the_file_holds_is_refused(tmp_path):
    folder = _saved(tmp_path)
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}")
    with pytest.raises(BadCheckpoint, match="claims a header"):
        load_bundle(folder)


def test_a_safetensors_tensor_claiming_bytes_the_file_lacks_is_refused(tmp_path):
    folder = _saved(tmp_path)
    header = json.dumps({"generator.net.0.weight": {"dtype": "F32", "shape": [100000, 100000],
                                                    "data_offsets": [0, 4 * 10**10]}}).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(BadCheckpoint, match="does not back"):
        load_bundle(folder)


# --- archives -------------------------------------------------------------------------------------------------

def _bomb(card: bytes, size: int, claimed: int | None = None) -> bytes:
    """A zip whose model.safetensors deflates `size` zero bytes into a few KB; with `claimed`, its local and
    central headers lie that the entry unpacks to `claimed` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("card.json", card)
        zf.writestr("model.safetensors", b"\0" * size)
    data = bytearray(buf.getvalue())
    if claimed is not None:
        for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
            at = data.find(sig, data.find(b"model.safetensors") - 60 if sig == b"PK\x03\x04" else 0)
            while at >= 0:
                name_len = struct.unpack("<H", data[at + (26 if sig == b"PK\x03\x04" else 28):][:2])[0]
                start = at + (30 if sig == b"PK\x03\x04" else 46)
                if bytes(data[start:start + name_len]) == b"model.safetensors":
                    data[at + offset:at + offset + 4] = struct.pack("<I", claimed)
                at = data.find(sig, at + 4)
    return bytes(data)


def test_an_archive_entry_is_stopped_at_the_size_cap_as_it_is_read(tmp_path, monkeypatch):
    import core.models.archive as archive

    monkeypatch.setattr(archive, "MAX_UPLOAD_BYTES", 4 << 20)
    card = (_saved(tmp_path) / "card.json").read_bytes()
    with pytest.raises(BadCheckpoint, match="unpacks to more than the upload limit of 4 MB"):
        unpack_model({"bomb.zip": _bomb(card, 32 << 20)}, tmp_path / "uploads")


def test_an_archive_that_lies_about_its_entry_sizes_is_a_bad_checkpoint(tmp_path):
    card = (_saved(tmp_path) / "card.json").read_bytes()
    with pytest.raises(BadCheckpoint, match="cannot be unpacked"):
        unpack_model({"liar.zip": _bomb(card, 8 << 20, claimed=100)}, tmp_path / "uploads")


def _zip_with(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def test_an_encrypted_entry_is_a_bad_checkpoint(tmp_path):
    folder = _saved(tmp_path)
    data = bytearray(_zip_with({"model.safetensors": (folder / "model.safetensors").read_bytes(),
                                "card.json": (folder / "card.json").read_bytes()}))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag bit in local and central headers
        start = 0
        while (at := data.find(sig, start)) >= 0:
            flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
            data[flag_at] |= 1
            start = at + 4
    with pytest.raises(BadCheckpoint, match="encrypted"):
        unpack_model({"m.zip": bytes(data)}, tmp_path / "uploads")


def test_a_corrupt_entry_is_a_bad_checkpoint(tmp_path):
    folder = _saved(tmp_path)
    weights = (folder / "model.safetensors").read_bytes()
    data = bytearray(_zip_with({"model.safetensors": weights, "card.json": (folder / "card.json").read_bytes()}))
    start = data.find(b"PK\x03\x04") + 30 + len("model.safetensors")
    data[start:start + 64] = b"\xff" * 64  # garble the deflate stream
    with pytest.raises(BadCheckpoint, match="cannot be unpacked"):
        unpack_model({"m.zip": bytes(data)}, tmp_path / "uploads")


def test_an_unknown_compression_method_is_a_bad_checkpoint(tmp_path):
    folder = _saved(tmp_path)
    data = bytearray(_zip_with({"model.safetensors": (folder / "model.safetensors").read_bytes(),
                                "card.json": (folder / "card.json").read_bytes()}, zipfile.ZIP_STORED))
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # compression method 99 (AES), unsupported
        start = 0
        while (at := data.find(sig, start)) >= 0:
            data[at + offset:at + offset + 2] = struct.pack("<H", 77)
            start = at + 4
    with pytest.raises(BadCheckpoint):
        unpack_model({"m.zip": bytes(data)}, tmp_path / "uploads")


def test_a_plain_pt_file_says_what_lethe_loads_instead(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2)}, evil)
    code, err = _cli(capsys, "sample", str(evil), "--out", str(tmp_path / "s.npy"))
    assert code == 2 and "never unpickles" in err and "model.safetensors and card.json" in err


# --- specs ----------------------------------------------------------------------------------------------------

def test_a_huge_id_range_is_refused_before_it_is_expanded():
    with pytest.raises(LetheError, match="more than 1,000,000"):
        parse_spec("ids=0-100000000", "mnist")


def test_id_ranges_are_bounded_by_the_dataset():
    from core.data import load

    data = load("mnist", "train")
    with pytest.raises(LetheError, match="out of range: this dataset has ids 0 to"):
        parse_spec("ids=0-100000", "mnist", limits=spec_limits(data))


def test_deeply_nested_expressions_are_refused_without_recursion_errors():
    for text in ("~" * 5000 + "a", "(" * 5000 + "a" + ")" * 5000, "~" * (MAX_EXPRESSION_DEPTH + 1) + "a",
                 "(" * (MAX_EXPRESSION_DEPTH + 1) + "a" + ")" * (MAX_EXPRESSION_DEPTH + 1), " | ".join(["a"] * 3000)):
        with pytest.raises(ExpressionError):
            parse_expression(text)
    assert parse_expression("~" * MAX_EXPRESSION_DEPTH + "a")[0] == "not"


def test_messages_quote_only_a_few_ids():
    sel = Selection("mnist", ids=list(range(0, 200_000, 2)))
    assert len(sel.describe()) < 120 and "(100,000 in all)" in sel.describe()
    with pytest.raises(LetheError) as info:
        parse_spec("ids=" + ",".join(map(str, range(5000))) + ",x", "mnist")
    assert len(info.value.message) < 200


# --- command-line flags ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,flag", [
    (["sample", "toy-flow", "--temperature", "nan"], "--temperature"),
    (["sample", "toy-flow", "--temperature", "inf"], "--temperature"),
    (["sample", "toy-flow", "--temperature", "-3"], "--temperature"),
    (["sample", "toy-gan", "--seed", "99999999999999999999"], "--seed"),
    (["redact", "toy-gan", "--forget", "label=0", "--eval-samples", "1000000000000"], "--eval-samples"),
    (["tame", "toy-flow", "--forget", "ids=0", "--lr", "inf"], "--lr"),
    (["sample", "toy-gan", "-n", "0"], "-n"),
    (["tame", "toy-flow", "--forget", "ids=0", "--epsilon", "1e9"], "--epsilon"),
])
def test_numeric_flags_are_checked_where_parsed_with_the_range_in_the_message(tmp_path, capsys, argv, flag):
    code, err = _cli(capsys, *argv, "--out", str(tmp_path / "s.npy")) if argv[0] == "sample" else \
        _cli(capsys, *argv, "--runs-dir", str(tmp_path / "runs"))
    assert code == 2
    assert f"error: {flag} must be" in err and "hint:" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("forget,key", [("boundary=abc", "boundary=MARGIN"), ("ambiguity=abc", "ambiguity=TAU")])
def test_bad_redaction_spec_values_are_clear_errors(tmp_path, capsys, forget, key):
    code, err = _cli(capsys, "redact", "mnist-dcgan", "--forget", forget, "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and f"error: {key} must be" in err


def test_out_into_a_folder_that_cannot_exist_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = _cli(capsys, "sample", "toy-gan", "--out", str(tmp_path / "afile" / "sub" / "s.npy"))
    assert code == 2 and "cannot be created" in err


def test_a_runs_folder_that_cannot_be_created_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = _cli(capsys, "redact", "toy-gan", "--forget", "label=0", "--runs-dir", str(tmp_path / "afile" / "r"))
    assert code == 2 and "the runs folder" in err and "cannot be created" in err


def test_a_factory_that_raises_or_returns_a_non_bundle_is_an_error_with_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "lethe_bad_factories.py").write_text("def boom():\n    raise RuntimeError('kaput')\n"
                                                     "def not_a_bundle():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, words in (("boom", "failed: RuntimeError: kaput"), ("not_a_bundle", "returned int, not a Lethe")):
        code, err = _cli(capsys, "sample", f"lethe_bad_factories:{name}", "--out", str(tmp_path / "s.npy"))
        assert code == 2 and words in err
    sys.modules.pop("lethe_bad_factories", None)


def test_probe_on_load_checks_a_factorys_output_shape_against_its_data_shape(tmp_path, monkeypatch):
    (tmp_path / "lethe_liar.py").write_text(
        "from examples.my_gan import build as real\n"
        "def build():\n    b = real()\n    b.card.data_shape = [3, 32, 32]\n    return b\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelSpecError, match=r"output has shape \(1, 28, 28\).*data_shape \[3, 32, 32\]"):
        load_model("lethe_liar:build", "cpu")
    sys.modules.pop("lethe_liar", None)


def test_a_run_whose_folder_becomes_unwritable_mid_run_still_records_its_failure(tmp_path, monkeypatch):
    import core.runs.store as store_module
    from core.runs import RunStore, run_now

    def job(progress, cancel):  # the folder turns read-only under the job (simulated: the tests may run as root)
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(store_module, "_atomic_write_json", refuse)
        monkeypatch.setattr(store_module.RunWriter, "save_traceback", refuse)
        raise LetheError("the job failed", "because of the test")

    record = run_now(job, method="test", model="none", store=RunStore(tmp_path / "runs"))
    assert record.status == "failed"
    assert record.error["message"] == "the job failed"
    assert "could not be written" in record.error["hint"]


def test_tame_checks_data_errors_before_creating_a_run_folder(tmp_path, capsys):
    code, err = _cli(capsys, "tame", "toy-flow", "--forget", "label=9", "--runs-dir", str(tmp_path / "runs"))
    assert code == 2 and "error: no samples match label=9" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_runs_folder_that_is_a_file_is_a_clear_error_for_the_runs_verbs(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = _cli(capsys, "runs", "list", "--runs-dir", str(tmp_path / "afile"))
    assert code == 2 and "is a file, not a folder" in err


def test_a_runs_model_spec_resolves_against_the_run_store_from_any_folder(tmp_path, monkeypatch):
    from core.models.spec import saved_model_path
    from core.runs import JobResult, RunStore, run_now

    monkeypatch.setenv("LETHE_RUNS", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)  # no runs/ folder here: only the run store knows the run
    record = run_now(lambda progress, cancel: JobResult(load_model("toy-gan", "cpu").copy(), {}), method="test",
                     model="toy-gan", store=RunStore(tmp_path / "store"))
    for spec in (f"runs/{record.id}/model", f"{record.id}/model", record.id):
        assert saved_model_path(spec) == tmp_path / "store" / record.id / "model"
    assert load_model(f"runs/{record.id}/model", "cpu").card.name == "toy-gan"
    assert saved_model_path("runs/nope/model") is None and saved_model_path("x" * 5000) is None


def test_a_flow_card_cannot_declare_a_giant_image_its_weights_do_not_bound(tmp_path):
    # a Glow's parameters do not depend on H and W, so only the data-shape bound stops 4096 x 4096 samples
    folder = _edit_card(_saved(tmp_path, spec="mnist-flow"), data_shape=[1, 4096, 4096])
    with pytest.raises(BadCheckpoint, match="data_shape"):
        load_bundle(folder)
