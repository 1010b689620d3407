"""Mixed precision (`--precision fp32|bf16|fp16`): one autocast context and one optimiser step for every method.

    precision = Precision("bf16", device)
    stepper = precision.stepper(optimiser)          # one per optimiser (a GAN has two players)
    with precision.autocast():
        loss = model_loss(...)
    stepper.step(loss, clip_params=params, clip=3.0)

bf16 keeps fp32's exponent range, so it needs no loss scaling; fp16 does: each stepper owns a
`torch.amp.GradScaler` that scales the loss before backward, unscales the gradients before clipping, skips a step
whose gradients overflowed and adapts the scale. Parameters, optimiser state and the saved model stay fp32
(autocast only lowers the precision of matmuls and convolutions); losses are computed in fp32 (callers cast the
network's output with `.float()` before the loss).

Which methods allow which precision, and why the others refuse, is `SUPPORTED` / `FP32_ONLY` below; the command
line checks it before loading anything.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Iterable

import torch

from core.errors import LetheError

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

SUPPORTED: dict[str, tuple[str, ...]] = {"redact": PRECISIONS, "unlearn": PRECISIONS}
"""Verbs whose maths tolerates low-precision matmuls: redaction's players (the BCE of eq. 3 is taken in fp32 from
the logit) and I2I unlearning's encoder (the MSEs of eq. 10 in fp32)."""

FP32_ONLY: dict[str, str] = {
    "tame": "taming compares NLLs of a normalizing flow, whose log-determinants sum hundreds of per-layer terms, "
            "to a threshold a fraction of sigma_R away (eq. 10), and its remember loss fits normals to those NLLs "
            "(the KLs of eq. 11): bf16's 8-bit mantissa moves an NLL by more than epsilon sigma_R",
    "influence": "influence estimates are exact Jacobian-vector products through the training trajectory, and "
                 "their sign decides which instances are harmful: low precision makes them noise",
    "gold": "GOLD's scores are differences of discriminator logits and log-probabilities (importance weights "
            "exp(logit)); their rejection thresholds and re-weighting need fp32's precision",
}


def check_precision(verb: str, name: str) -> None:
    """Raise a LetheError when `verb` cannot run at precision `name`, saying why."""
    if name not in PRECISIONS:
        raise LetheError(f"unknown precision {name!r}.", f"Use one of {', '.join(PRECISIONS)}.")
    if name == "fp32" or name in SUPPORTED.get(verb, ()):
        return
    why = FP32_ONLY.get(verb, f"{verb} has not been checked at reduced precision")
    raise LetheError(f"{verb} runs in fp32 only: {why}.", "Drop --precision (fp32 is the default).")


class Stepper:
    """Backward and optimiser step for one optimiser, with fp16 loss scaling when the precision needs it."""

    def __init__(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
        self.optimizer, self.scaler = optimizer, scaler

    def step(self, loss: torch.Tensor, clip_params: Iterable[torch.Tensor] | None = None,
             clip: float | None = None) -> None:
        """zero_grad, backward, (unscale and) clip the gradient norm if asked, step, update the scale."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(list(clip_params or ()), clip)
            self.optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(list(clip_params or ()), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()


class Precision:
    """The autocast context and steppers for one of `PRECISIONS` on `device`."""

    def __init__(self, name: str = "fp32", device: torch.device | str = "cpu") -> None:
        if name not in PRECISIONS:
            raise LetheError(f"unknown precision {name!r}.", f"Use one of {', '.join(PRECISIONS)}.")
        self.name, self.device = name, torch.device(device)

    def autocast(self) -> Any:
        """Autocast to bf16 / fp16 on this device's type; a no-op context for fp32."""
        if self.name == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=_DTYPES[self.name])

    def stepper(self, optimizer: torch.optim.Optimizer) -> Stepper:
        """A stepper for `optimizer`, with its own GradScaler under fp16."""
        scaler = torch.amp.GradScaler(self.device.type) if self.name == "fp16" else None
        return Stepper(optimizer, scaler)
