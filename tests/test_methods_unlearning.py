"""Unlearning for image-to-image models (core.methods.unlearning): eq. 10 on a toy where the right outcome is
obvious (forget codes move to the noise's codes, retain codes stay, the decoder never changes), the baselines
behind one interface, the noise conventions, the retain sources, the held-out evaluation sets, bad inputs (each a
clear LetheError with the pretrained model untouched) and the `unlearn` verb."""

from __future__ import annotations

import json

import pytest
import torch

from core.data.base import ImageData
from core.data.selection import Selection
from core.errors import EmptySelection, LetheError, NonFiniteError
from core.methods.unlearning import (METHODS, UnlearnConfig, build_sets, comparison, degrade_for_eval, draw_noise,
                                     eval_kinds, prepare, unlearn)
from core.methods.unlearning.algorithm import noise_target
from core.methods.unlearning.measure import complete
from core.models import ModelCard
from core.models.degradations import FILL, degrade_mixed
from core.models.i2i import build_conv_i2i


def _toy(n_per_class: int = 24, split: str = "train", offset: int = 0) -> ImageData:
    """16x16 images: class 0 horizontal bars, class 1 vertical bars, class 2 a bright square; a little noise."""
    gen = torch.Generator().manual_seed(offset)
    xs, labels = [], []
    for label in range(3):
        x = torch.zeros(n_per_class, 1, 16, 16)
        if label == 0:
            x[:, :, ::4] = 1
        elif label == 1:
            x[:, :, :, ::4] = 1
        else:
            x[:, :, 4:12, 4:12] = 1
        xs.append((x + 0.05 * torch.rand(x.shape, generator=gen)).clamp(0, 1))
        labels.append(torch.full((n_per_class,), label))
    n = 3 * n_per_class
    return ImageData("toy-bars", split, torch.cat(xs), torch.arange(offset, offset + n), torch.cat(labels),
                     class_names=("h", "v", "sq"))


_PRETRAINED = {}


def _model():
    """A tiny conv-i2i pretrained for 150 steps on the toy (its codes tell the three patterns apart)."""
    if "state" not in _PRETRAINED:
        torch.manual_seed(0)
        bundle = build_conv_i2i(ModelCard(name="toy-i2i", family="i2i", architecture="conv-i2i",
                                          data_shape=[1, 16, 16], data={"dataset": "toy-bars"},
                                          hparams={"in_channels": 1, "width": 4, "latent_channels": 4}))
        x, gen = _toy().x, torch.Generator().manual_seed(0)
        opt = torch.optim.Adam([*bundle.encoder.parameters(), *bundle.decoder.parameters()], lr=1e-2)
        for _ in range(150):
            xd, _ = degrade_mixed(x, generator=gen)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(bundle.decoder.logits(bundle.encoder(xd)), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        _PRETRAINED["state"] = bundle
    return _PRETRAINED["state"].copy().eval()


def _sets(retain: str = "train"):
    return build_sets(_toy(), _toy(8, "test", 1000), Selection("toy-bars", labels=(0,)), retain=retain)


def _state(bundle):
    return {f"{name}.{k}": v.clone() for name, m in bundle.modules().items() for k, v in m.state_dict().items()}


@torch.no_grad()
def _code_gap(student, teacher, x, target_x):
    """Mean squared distance between the student's code of T(x) and the teacher's code of T(target_x)."""
    xd, _ = degrade_for_eval(x, "center")
    td, _ = degrade_for_eval(target_x, "center")
    return float(((student.encode(xd) - teacher.encode(td)) ** 2).mean())


# ------------------------------------------------------------------------------------------------- eq. 10


def test_ours_pulls_forget_codes_to_the_noise_codes_keeps_retain_codes_and_never_touches_the_decoder():
    model, sets = _model(), _sets()
    original = _state(model)
    noise = draw_noise(sets.eval_forget.x, "normalised", sets.pixel_mean, sets.pixel_std,
                       torch.Generator().manual_seed(5))
    forget_before = _code_gap(model, model, sets.eval_forget.x, noise)
    result = unlearn(model, sets, UnlearnConfig(epochs=30, batch_size=16, lr=3e-3, log_every=1))
    student = result.bundle
    forget_after = _code_gap(student, model, sets.eval_forget.x, noise)
    retain_after = _code_gap(student, model, sets.eval_retain.x, sets.eval_retain.x)
    assert forget_after < 0.5 * forget_before  # held-out forget images now encode like noise
    assert retain_after < 0.25 * forget_after  # held-out retain images still encode as before
    for key, value in _state(model).items():  # the pretrained model is untouched
        assert torch.equal(value, original[key])
    for key, value in student.decoder.state_dict().items():  # the decoder never ran a step
        assert torch.equal(value, original[f"decoder.{key}"])
    assert result.history[-1]["step"] == len(result.history) and result.history[0]["lr"] < 3e-3  # warm-up
    assert result.history[-1]["forget_loss"] < result.history[0]["forget_loss"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_on_the_same_sets_and_seed_and_reduces_its_own_loss(method):
    model, sets = _model(), _sets()
    config = UnlearnConfig(method=method, epochs=6, batch_size=16, lr=3e-3, log_every=1)
    first = unlearn(model, sets, config, seed=3)
    again = unlearn(model, sets, config, seed=3)
    assert [r["loss"] for r in first.history] == pytest.approx([r["loss"] for r in again.history])
    decoder_moved = any(not torch.equal(a, b) for a, b in zip(first.bundle.decoder.parameters(),
                                                              model.decoder.parameters()))
    assert decoder_moved == (method not in ("ours", "random-encoder"))
    if method == "max-loss":
        assert all(r["forget_loss"] <= 0 for r in first.history)  # the forget reconstruction is maximised
    else:
        assert first.history[-1]["loss"] < first.history[0]["loss"]


def test_noise_is_identity_covariance_on_normalised_images_or_each_images_own_statistics():
    x = torch.rand(400, 3, 8, 8) * torch.tensor([0.2, 0.5, 1.0]).view(1, 3, 1, 1)
    mean, std = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.05, 0.2, 0.3])
    n = draw_noise(x, "normalised", mean, std, torch.Generator().manual_seed(0))
    z = (n - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    assert z.mean().item() == pytest.approx(0, abs=0.02) and z.std().item() == pytest.approx(1, abs=0.02)
    per_image = draw_noise(x, "image", mean, std, torch.Generator().manual_seed(0))
    assert per_image.mean((2, 3)).sub(x.mean((2, 3))).abs().mean() < 0.05
    assert per_image.std((2, 3)).div(x.std((2, 3))).mean().item() == pytest.approx(1, abs=0.15)


def test_the_noise_target_averaged_over_k_draws_is_the_same_expectation_with_k_times_less_variance():
    model, sets = _model(), _sets()
    xf = sets.forget.x[:8]
    _, mask = degrade_for_eval(xf, "center")

    def targets(k: int) -> torch.Tensor:
        config = UnlearnConfig(noise_draws=k)
        return torch.stack([noise_target(model, xf, mask, config, sets.pixel_mean, sets.pixel_std,
                                         torch.Generator().manual_seed(seed))[1] for seed in range(40)])

    one, sixteen = targets(1), targets(16)
    assert sixteen.var(0).mean() < one.var(0).mean() / 6  # 1/16 in expectation
    spread = one.std(0).mean()
    assert (sixteen.mean(0) - one.mean(0)).abs().mean() < spread  # both estimate E_n E0(T(n))


def test_evaluation_masks_are_the_same_for_every_call_and_center_small_is_a_quarter_side():
    x = torch.rand(4, 1, 16, 16)
    a, mask_a = degrade_for_eval(x, "patches")
    b, mask_b = degrade_for_eval(x, "patches")
    assert torch.equal(a, b) and torch.equal(mask_a, mask_b)
    small, mask = degrade_for_eval(x, "center-small")
    assert mask.sum().item() == 4 * 4 * 4 and bool((small[mask.expand_as(small)] == FILL).all())
    assert eval_kinds(_model())[:2] == ("center", "center-small")


def test_a_completion_keeps_every_pixel_the_model_was_shown_and_paints_only_the_hole():
    bundle, x = _model(), _toy(4, "test", 1000).x
    for kind in ("center", "patches"):
        degraded, mask = degrade_for_eval(x, kind)
        painted = bundle.restore(degraded).detach()
        out = complete(bundle, x, kind)
        hole = mask.expand_as(x)
        assert torch.equal(out[~hole], x[~hole])
        assert torch.allclose(out[hole], painted[hole])
        assert not torch.allclose(painted[~hole], x[~hole], atol=1e-3)  # the raw output would have changed them


# ------------------------------------------------------------------------------------------------ the sets


def test_held_out_sets_are_test_images_of_the_forgotten_and_kept_classes():
    sets = _sets()
    assert set(sets.forget.labels.tolist()) == {0} and set(sets.retain.labels.tolist()) == {1, 2}
    assert set(sets.eval_forget.labels.tolist()) == {0} and set(sets.eval_retain.labels.tolist()) == {1, 2}
    trained = set(sets.forget.ids.tolist()) | set(sets.retain.ids.tolist())
    assert trained.isdisjoint(sets.eval_forget.ids.tolist() + sets.eval_retain.ids.tolist())


def test_limited_retain_keeps_k_per_class_and_proxy_retain_is_as_large_as_the_forget_set():
    limited = _sets("limited:2")
    assert sorted(limited.retain.labels.tolist()) == [1, 1, 2, 2]
    proxy = _sets("proxy:label=2")
    assert set(proxy.retain.labels.tolist()) == {2} and len(proxy.retain) == len(proxy.forget)


def test_a_proxy_of_other_classes_is_also_measured_on_the_kept_classes_it_never_shows():
    test = _toy(60, "test", 1000)
    proxy = build_sets(_toy(), test, Selection("toy-bars", labels=(0,)), retain="proxy:label=2")
    assert set(proxy.eval_retain.labels.tolist()) == {1, 2} and set(proxy.eval_unseen.labels.tolist()) == {1}
    assert "60 of them of kept classes the proxy never shows" in proxy.describe()
    for retain in ("train", "limited:2"):  # the retain term sees every kept class
        assert build_sets(_toy(), test, Selection("toy-bars", labels=(0,)), retain=retain).eval_unseen is None
    assert _sets("proxy:label=2").eval_unseen is None  # 8 held-out images give FID no covariance


@pytest.mark.parametrize("retain, message", [
    ("proxy:label=0,2", "overlaps the forget set"),
    ("proxy:toy-bars", "own training data"),
    ("limited:0", "K >= 1"),
    ("somewhere", "unknown retain source"),
])
def test_bad_retain_sources_say_what_to_do(retain, message):
    with pytest.raises(LetheError, match=message) as info:
        _sets(retain)
    assert info.value.hint


def test_empty_and_whole_forget_sets_are_refused():
    with pytest.raises(EmptySelection):
        build_sets(_toy(), _toy(8, "test", 1000), Selection("toy-bars", labels=(7,)))
    with pytest.raises(EmptySelection, match="nothing is left to retain"):
        build_sets(_toy(), _toy(8, "test", 1000), Selection("toy-bars", labels=(0, 1, 2)))


def test_nan_loss_stops_with_a_clear_message_and_the_model_untouched():
    model, sets = _model(), _sets()
    before = _state(model)
    sets.forget.x[:] = float("nan")
    with pytest.raises(NonFiniteError, match="untouched"):
        unlearn(model, sets, UnlearnConfig(epochs=1, batch_size=16))
    assert all(torch.equal(v, before[k]) for k, v in _state(model).items())


def test_a_model_that_is_not_image_to_image_is_refused():
    from core.models.spec import load_model

    with pytest.raises(LetheError, match="image-to-image") as info:
        prepare(load_model("mnist-lenet"), "label=0")
    assert "mnist-i2i" in info.value.hint


def test_bad_settings_are_refused_before_training():
    for bad in (dict(method="forget-harder"), dict(alpha=0), dict(noise="pink"), dict(epochs=0),
                dict(lr=float("nan")), dict(retain_ratio=0), dict(noise_draws=0)):
        with pytest.raises(LetheError):
            UnlearnConfig(**bad).validate()


# ---------------------------------------------------------------------------------- measurements and verb


def test_unlearn_verb_reports_before_and_after_on_held_out_digits(capsys):
    from core.cli import main

    code = main(["unlearn", "mnist-i2i", "--forget", "label=0", "--retain", "limited:2", "--epochs", "1",
                 "--batch-size", "32", "--eval-size", "60", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, out
    for kind in ("center", "center-small", "extend", "outpaint", "patches"):
        for s in ("retain", "forget"):
            for key in ("fid", "is", "cos", "psnr"):
                assert f"{key}_{s}[{kind}]" in out and f"before:{key}_{s}[{kind}]" in out
    assert out["cv_fid_forget"] > 0 and out["seconds"] > 0 and out["model"]
    assert out["forget_images"] == 400 and out["retain_images"] == 18
    table = comparison([("run", {"method": "ours"}, out)])
    assert list(table["model"]) == ["Original model", "Ours (run)"]
    assert table.loc[0, "FID F"] == out["before:fid_forget[center]"]


def test_unlearn_verb_with_a_proxy_of_other_digits_reports_the_digits_it_never_showed(capsys):
    from core.cli import main

    code = main(["unlearn", "mnist-i2i", "--forget", "label=0", "--retain", "proxy:label=5-9", "--epochs", "1",
                 "--batch-size", "64", "--eval-size", "200", "--json"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, out
    assert out["retain_images"] == out["forget_images"]
    assert out["fid_unseen[center]"] > 0 and out["before:fid_unseen[center]"] > 0
    plain = {k: v for k, v in out.items() if "unseen" not in k}  # a run on the real retain set comes first
    table = comparison([("train", {"method": "ours"}, plain), ("proxy", {"method": "ours"}, out)])
    assert table.loc[0, "FID U"] == out["before:fid_unseen[center]"]  # the original, read from the proxy run
    assert table.loc[2, "FID U"] == out["fid_unseen[center]"]


def test_unlearn_verb_refuses_a_model_that_is_not_image_to_image(capsys):
    from core.cli import main

    assert main(["unlearn", "mnist-lenet", "--forget", "label=0"]) == 2
    assert "i2i" in capsys.readouterr().err
