"""The taming losses (Malnick et al., *Taming Normalizing Flows*, WACV 2024, Sec. 3.3), as pure tensor functions.

Every NLL here is in **bits per dimension** (`core.metrics.bits_per_dim`), as in the authors' code. The unit is
not cosmetic: eq. 9 passes sigma_R^2 d^2 = (NLL - threshold)^2 through a sigmoid, which is only informative (not
saturated at 1) when NLL differences are O(1); in nats per image a 32x32x3 face's differences are in the
hundreds and the sigmoid's gradient would vanish.

    threshold         t = mu_R + s * delta * sigma_R                    (s = +1 forget, -1 emphasise)
    eq. 8             d(x) = (NLL(x) - t) / sigma_R
    eq. 9             L_F = mean_x S(sigma_R^2 d(x)^2)                   (S = sigmoid)
    eq. 10            stop when |d(x)| < epsilon for every forget image
    eq. 11            L_R = (1 - gamma) A(D_R) + gamma (KL_F + KL_R)
    eq. 12            L = alpha L_F + (1 - alpha) L_R

KL_F and KL_R compare normal fits N(mu, sigma^2) of the remember NLLs under the base model and the model being
tamed (eq. 6): forward KL(base || tamed) and reverse KL(tamed || base). Both are differentiable in the tamed
model's mean *and* standard deviation: sigma is `std()` of the NLL tensor and log sigma is `torch.log` of it.
(The authors' code computes log sigma from a detached number, so its KL gives no gradient through log sigma; this
module does not copy that.)
"""

from __future__ import annotations

import torch


def normal_fit(nlls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, sigma) of a normal fit to a 1-D tensor of NLLs (eq. 7: mean and population standard deviation).

    Differentiable: gradients flow to every NLL through both mu and sigma."""
    mu = nlls.mean()
    sigma = (nlls - mu).square().mean().sqrt()
    return mu, sigma


def normal_kl(mu_p: torch.Tensor, sigma_p: torch.Tensor, mu_q: torch.Tensor, sigma_q: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_p, sigma_p^2) || N(mu_q, sigma_q^2)) = log(sigma_q / sigma_p) + (sigma_p^2 + (mu_p - mu_q)^2)
    / (2 sigma_q^2) - 1/2, differentiable in all four arguments (zero iff the two normals are equal)."""
    mu_p, sigma_p, mu_q, sigma_q = (torch.as_tensor(v, dtype=torch.float32) if not isinstance(v, torch.Tensor) else v
                                    for v in (mu_p, sigma_p, mu_q, sigma_q))
    return (torch.log(sigma_q) - torch.log(sigma_p)
            + (sigma_p.square() + (mu_p - mu_q).square()) / (2 * sigma_q.square()) - 0.5)


def threshold(mu_r: float, sigma_r: float, delta: float, direction: str = "forget") -> float:
    """The NLL the forget images are pulled to: mu_R + delta sigma_R (forget) or mu_R - delta sigma_R (emphasise)."""
    sign = 1.0 if direction == "forget" else -1.0
    return mu_r + sign * delta * sigma_r


def signed_distance(nlls: torch.Tensor, mu_r: float, sigma_r: float, delta: float,
                    direction: str = "forget") -> torch.Tensor:
    """Eq. 8: d(x) = (NLL(x) - threshold) / sigma_R, the signed distance to the threshold in units of sigma_R.

    For forgetting a negative d means "not yet forgotten enough" (more likely than the threshold)."""
    return (nlls - threshold(mu_r, sigma_r, delta, direction)) / sigma_r


def forget_loss(distances: torch.Tensor, sigma_r: float) -> torch.Tensor:
    """Eq. 9: mean over the forget batch of S(sigma_R^2 d^2) (S the sigmoid); minimal when every d is 0."""
    return torch.sigmoid(sigma_r ** 2 * distances.square()).mean()


def reached(distances: torch.Tensor, epsilon: float) -> bool:
    """Eq. 10, the stopping rule: every forget image is within epsilon (in sigma_R units) of the threshold."""
    return bool((distances.abs() < epsilon).all())


def remember_loss(tamed_nlls: torch.Tensor, base_nlls: torch.Tensor, gamma: float, *, nll_term: bool = True,
                  forward_kl: bool = True, reverse_kl: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 11: (1 - gamma) A_T(D_R) + gamma (KL_F + KL_R) on one remember batch, with the Table 2 ablations.

    `tamed_nlls` carry gradients; `base_nlls` are the base model's NLLs of the same (identically dequantized)
    images, without gradients. A_T is the mean tamed NLL (eq. 5). Returns the loss and its parts as detached 0-d
    tensors, which the caller reads in one host transfer with its other metrics (not one per part)."""
    mu_t, sigma_t = normal_fit(tamed_nlls)
    mu_b, sigma_b = normal_fit(base_nlls.detach())
    kl_f = normal_kl(mu_b, sigma_b, mu_t, sigma_t)  # forward: KL(base || tamed)
    kl_r = normal_kl(mu_t, sigma_t, mu_b, sigma_b)  # reverse: KL(tamed || base)
    avg = tamed_nlls.mean()
    loss = tamed_nlls.new_zeros(())
    if nll_term:
        loss = loss + (1 - gamma) * avg
    if forward_kl:
        loss = loss + gamma * kl_f
    if reverse_kl:
        loss = loss + gamma * kl_r
    parts = {"kl_forward": kl_f.detach(), "kl_reverse": kl_r.detach(), "remember_bpd": avg.detach(),
             "remember_sigma": sigma_t.detach()}
    return loss, parts


def total_loss(l_forget: torch.Tensor, l_remember: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """Eq. 12: alpha L_F + (1 - alpha) L_R (L_R None: the "no remember loss" ablation, alpha L_F alone)."""
    if l_remember is None:
        return alpha * l_forget
    return alpha * l_forget + (1 - alpha) * l_remember
