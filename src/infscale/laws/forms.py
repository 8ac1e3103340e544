"""Scaling-law forms, looked up by name in `LAWS`.

Each form predicts loss from natural parameters (`predict`) and, for the Huber fitter, gives the log-loss in a log-space
parametrisation together with its vector-Jacobian product, vectorised over a batch of parameter vectors:

- `chinchilla`:   L = E + A/N^alpha + B/D^beta                              (Hoffmann et al. 2022, approach 3)
- `chinchilla_tied`: the same with beta = alpha                              (Bian et al.'s baseline)
- `inference_aware`: L = (E + A/N^a + B/D^a) * (1 + eps * R^a), R = d_model/n_layers, one tied exponent a (Bian et al. 2025)
- `inference_aware_free_gamma`: L = (E + A/N^a + B/D^a) * (1 + eps * R^gamma)
- `aspect_optimum`: L = (E + A/N^a + B/D^a) * (1 + kappa * ln(R/R0)^2): a shape term with an optimum aspect ratio
- `kaplan`:       L = ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D            (Kaplan et al. 2020, eq. 1.5)
- `gadre`:        L = E + (a M^eta + b M^-eta) C^-eta, C = 6ND, M = D/N    (Gadre et al. 2024, over-training law)
- `bian2025b`:    L = (E + A/N^a + B/D^a) * (1 + kappa_h ln(h/h0)^2) * (1 + kappa_f ln(r/r0)^2), h = d_model/sqrt(N),
                  r the MLP-to-attention parameter ratio: Bian et al. 2025b's U-shapes in hidden size and in r at
                  fixed N (as we read the paper; GQA is searched outside its law)
- `arch_conditional`: L = (E + A/N^a + B/D^a) * (1 + kappa ln(R/R0)^2) * (1 + kappa_f ln(r/r0)^2) * G^eta, G the
                  query heads per KV head (1: multi-head attention): ours, the aspect bowl of `aspect_optimum`, the
                  r bowl, and a power of the GQA group that charges (eta > 0) or credits KV sharing at equal N and D

Log-space parametrisations write positive coefficients as exponentials, so log L is a log-sum-exp of terms that are linear in
the parameters (plus a softplus for the shape factor): `a = log A`, `b = log B`, `e = log E`, `l = log eps`.
N in parameters, D in tokens, R dimensionless, loss in nats per token. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from infscale.laws.form_base import (  # noqa: F401 - Features, Architecture, ARCH_COLUMNS: the laws' public names
    ARCH_COLUMNS,
    Architecture,
    Features,
    LawForm,
    _col,
    _grid,
    _lse3,
    _terms_vjp,
)
from infscale.registry import Registry


class ChinchillaFamily(LawForm):
    """E + A/N^alpha + B/D^beta, optionally tied beta = alpha, optionally times (1 + eps R^gamma) (gamma tied or free)."""

    def __init__(self, name: str, *, tie_beta: bool, shape: bool, tie_gamma: bool = True):
        self.name = name
        self.tie_beta, self.shape, self.tie_gamma = tie_beta, shape, tie_gamma
        nat = ["A", "B", "E", "alpha"] + ([] if tie_beta else ["beta"])
        log = ["a", "b", "e", "alpha"] + ([] if tie_beta else ["beta"])
        if shape:
            nat.append("eps")
            log.append("l")
            if not tie_gamma:
                nat.append("gamma")
                log.append("gamma")
        self.param_names, self.log_names = tuple(nat), tuple(log)
        self.exponents = tuple(p for p in nat if p in ("alpha", "beta", "gamma"))
        self.coefficients = tuple(p for p in nat if p in ("A", "B", "E", "eps"))
        self.needs_aspect_ratio = shape
        if shape and tie_gamma:
            self.ls_starts = ((5e4, 5e5, 2.0, 0.5, 1e-3),)
        elif shape:
            self.ls_starts = ((5e4, 5e5, 2.0, 0.5, 1.1e-3, 0.5),)  # the paper's camera-ready start
        else:
            self.ls_starts = ((400.0, 400.0, 1.7, 0.3) + (() if tie_beta else (0.3,)),)

    def _idx(self, key: str) -> int:
        return self.param_names.index(key)

    def predict(self, params, n_params, n_tokens, aspect_ratio=None, arch=None):
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        A, B, E, alpha = (_col(params, i) for i in range(4))
        beta = alpha if self.tie_beta else _col(params, 4)
        loss = E + A * n ** -alpha + B * d ** -beta
        if self.shape:
            self.check_inputs(aspect_ratio)
            eps = _col(params, self._idx("eps"))
            gamma = alpha if self.tie_gamma else _col(params, self._idx("gamma"))
            loss = loss * (1.0 + eps * np.asarray(aspect_ratio, dtype=float) ** gamma)
        return loss

    def to_log(self, params):
        p = np.array(params, dtype=float)
        for key in self.coefficients:
            i = self._idx(key)
            p[..., i] = np.log(p[..., i])
        return p

    def from_log(self, theta):
        p = np.array(theta, dtype=float)
        for key in self.coefficients:
            i = self._idx(key)
            p[..., i] = np.exp(p[..., i])
        return p

    def log_predict_vjp(self, theta, x):
        theta = np.atleast_2d(theta)
        a, b, e, alpha = (theta[:, i:i + 1] for i in range(4))
        k = 4
        beta = alpha
        if not self.tie_beta:
            beta, k = theta[:, 4:5], 5
        lse, w1, w2, w3 = _lse3(a - alpha * x.log_n, b - beta * x.log_d, e)
        if self.shape:
            if x.log_r is None:
                self.check_inputs(None)
            l_eps = theta[:, k:k + 1]
            gamma = alpha if self.tie_gamma else theta[:, k + 1:k + 2]
            z = l_eps + gamma * x.log_r
            sig = 1.0 / (1.0 + np.exp(-z))
            lse = lse + np.logaddexp(0.0, z)

        def vjp(u: np.ndarray) -> np.ndarray:
            out, g1, g2 = _terms_vjp(u, w1, w2, w3, theta)
            g_alpha = -np.einsum("bn,n->b", g1, x.log_n)
            g_beta = -np.einsum("bn,n->b", g2, x.log_d)
            if self.tie_beta:
                g_alpha = g_alpha + g_beta
            else:
                out[:, 4] = g_beta
            if self.shape:
                h = u * sig
                out[:, k] = h.sum(1)
                g_gamma = np.einsum("bn,n->b", h, x.log_r)
                if self.tie_gamma:
                    g_alpha = g_alpha + g_gamma
                else:
                    out[:, k + 1] = g_gamma
            out[:, 3] = g_alpha
            return out

        return lse, vjp

    def huber_grid(self):
        exps = [0.0, 0.5, 1.0, 1.5, 2.0]
        ab = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
        es = [-1.0, -0.5, 0.0, 0.5, 1.0]
        axes: list[list[float]] = [ab, ab, es, exps] + ([] if self.tie_beta else [exps])
        if self.shape:
            axes.append([-12.0, -9.0, -6.0, -3.0])
            if not self.tie_gamma:
                axes.append([0.5, 1.0, 1.5])
        return _grid(*axes)


class AspectOptimum(LawForm):
    """L = (E + A/N^alpha + B/D^alpha) * (1 + kappa * ln(R / R0)^2): a shape term with an optimum aspect ratio R0.

    Bian et al.'s factor ``1 + eps R^alpha`` only grows with R, so it cannot say that both a very deep-narrow and a very
    wide-shallow model are worse than one in between; this term can (Kaplan et al. 2020, fig. 5, saw such a bowl in
    loss against d_model/n_layers). Log space: ``a, b, e`` as in the Chinchilla family, ``k = log kappa``,
    ``r0 = log R0``."""

    name = "aspect_optimum"
    param_names = ("A", "B", "E", "alpha", "kappa", "R0")
    log_names = ("a", "b", "e", "alpha", "k", "r0")
    exponents = ("alpha",)
    coefficients = ("A", "B", "E", "kappa", "R0")
    needs_aspect_ratio = True
    ls_starts = ((5e2, 5e2, 2.0, 0.3, 1e-3, 8.0), (5e4, 5e5, 2.0, 0.5, 1e-2, 4.0))
    _LOG = (0, 1, 2, 4, 5)

    def predict(self, params, n_params, n_tokens, aspect_ratio=None, arch=None):
        self.check_inputs(aspect_ratio)
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        A, B, E, alpha, kappa, r0 = (_col(params, i) for i in range(6))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.log(np.asarray(aspect_ratio, dtype=float) / r0) ** 2
        return (E + A * n ** -alpha + B * d ** -alpha) * (1.0 + kappa * q)

    def to_log(self, params):
        p = np.array(params, dtype=float)
        p[..., self._LOG] = np.log(p[..., self._LOG])
        return p

    def from_log(self, theta):
        p = np.array(theta, dtype=float)
        p[..., self._LOG] = np.exp(p[..., self._LOG])
        return p

    def log_predict_vjp(self, theta, x):
        theta = np.atleast_2d(theta)
        if x.log_r is None:
            self.check_inputs(None)
        a, b, e, alpha, k, r0 = (theta[:, i:i + 1] for i in range(6))
        lse, w1, w2, w3 = _lse3(a - alpha * x.log_n, b - alpha * x.log_d, e)
        dev = x.log_r - r0
        kappa = np.exp(k)
        shape_term = 1.0 + kappa * dev ** 2
        lse = lse + np.log(shape_term)

        def vjp(u: np.ndarray) -> np.ndarray:
            out, g1, g2 = _terms_vjp(u, w1, w2, w3, theta)
            out[:, 3] = -np.einsum("bn,n->b", g1, x.log_n) - np.einsum("bn,n->b", g2, x.log_d)
            h = u / shape_term
            out[:, 4] = (h * kappa * dev ** 2).sum(1)
            out[:, 5] = (h * kappa * -2.0 * dev).sum(1)
            return out

        return lse, vjp

    def huber_grid(self):
        ab = [0.0, 5.0, 10.0, 15.0, 20.0]
        return _grid(ab, ab, [-1.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.5], [-7.0, -4.0, -2.0], [0.0, 1.5, 3.0, 4.5])


class Kaplan(LawForm):
    """L = ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D; log space: n_c = log N_c, d_c = log D_c."""

    name = "kaplan"
    param_names = ("N_c", "D_c", "alpha_N", "alpha_D")
    log_names = ("n_c", "d_c", "alpha_N", "alpha_D")
    exponents = ("alpha_N", "alpha_D")
    coefficients = ("N_c", "D_c")
    ls_starts = ((8.8e13, 5.4e13, 0.076, 0.095),)  # Kaplan et al.'s published values

    def predict(self, params, n_params, n_tokens, aspect_ratio=None, arch=None):
        nc, dc, an, ad = (_col(params, i) for i in range(4))
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        return ((nc / n) ** (an / ad) + dc / d) ** ad

    def to_log(self, params):
        p = np.array(params, dtype=float)
        p[..., :2] = np.log(p[..., :2])
        return p

    def from_log(self, theta):
        p = np.array(theta, dtype=float)
        p[..., :2] = np.exp(p[..., :2])
        return p

    def log_predict_vjp(self, theta, x):
        theta = np.atleast_2d(theta)
        nc, dc, an, ad = (theta[:, i:i + 1] for i in range(4))
        ratio = an / ad
        u1 = nc - x.log_n
        lse, w1, w2, _ = _lse3(ratio * u1, dc - x.log_d, np.full((1, 1), -np.inf))

        def vjp(u):
            up = u * ad
            g1 = up * w1
            out = np.empty_like(theta)
            out[:, 0] = g1.sum(1) * ratio[:, 0]
            out[:, 1] = (up * w2).sum(1)
            gu1 = (g1 * u1).sum(1)
            out[:, 2] = gu1 / ad[:, 0]
            out[:, 3] = (u * lse).sum(1) - gu1 * an[:, 0] / ad[:, 0] ** 2
            return out

        return ad * lse, vjp

    def huber_grid(self):
        return _grid([20.0, 25.0, 30.0, 35.0], [20.0, 25.0, 30.0], [0.05, 0.1, 0.2, 0.4], [0.05, 0.1, 0.2, 0.4])


class Gadre(LawForm):
    """L = E + (a M^eta + b M^-eta) C^-eta with C = 6ND (FLOPs) and M = D/N (tokens per parameter)."""

    name = "gadre"
    param_names = ("E", "a", "b", "eta")
    log_names = ("e", "log_a", "log_b", "eta")
    exponents = ("eta",)
    coefficients = ("E", "a", "b")
    ls_starts = ((1.5, 100.0, 100.0, 0.1),)

    def predict(self, params, n_params, n_tokens, aspect_ratio=None, arch=None):
        E, a, b, eta = (_col(params, i) for i in range(4))
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        c, m = 6.0 * n * d, d / n
        return E + (a * m ** eta + b * m ** -eta) * c ** -eta

    def to_log(self, params):
        p = np.array(params, dtype=float)
        p[..., :3] = np.log(p[..., :3])
        return p

    def from_log(self, theta):
        p = np.array(theta, dtype=float)
        p[..., :3] = np.exp(p[..., :3])
        return p

    def log_predict_vjp(self, theta, x):
        theta = np.atleast_2d(theta)
        e, la, lb, eta = (theta[:, i:i + 1] for i in range(4))
        log_m = x.log_d - x.log_n
        log_c = np.log(6.0) + x.log_n + x.log_d
        f2, f3 = log_m - log_c, -(log_m + log_c)
        lse, w1, w2, w3 = _lse3(e, la + eta * f2, lb + eta * f3)

        def vjp(u):
            g2, g3 = u * w2, u * w3
            out = np.empty_like(theta)
            out[:, 0] = (u * w1).sum(1)
            out[:, 1] = g2.sum(1)
            out[:, 2] = g3.sum(1)
            out[:, 3] = np.einsum("bn,n->b", g2, f2) + np.einsum("bn,n->b", g3, f3)
            return out

        return lse, vjp

    def huber_grid(self):
        return _grid([-1.0, -0.5, 0.0, 0.5, 1.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0], [0.0, 5.0, 10.0, 15.0, 20.0, 25.0],
                     [0.05, 0.1, 0.2, 0.3, 0.5])


_BOWLS = {
    # bowl -> (natural names, log names, the feature's log value, starting centres (log))
    "aspect": (("kappa", "R0"), ("k", "log_R0"), lambda x: x.log_r, (1.5, 3.5)),
    "width": (("kappa_h", "h0"), ("k_h", "log_h0"), lambda x: x.log_w - 0.5 * x.log_n, (-2.5, -1.0)),
    "ffn": (("kappa_f", "r0"), ("k_f", "log_r0"), lambda x: x.log_f, (0.0, 1.2)),
}


class ConditionalLaw(LawForm):
    """``(E + A/N^alpha + B/D^alpha) * prod_i (1 + kappa_i ln(x_i / x0_i)^2) [* G^eta]``: Chinchilla's loss at equal
    N and D, times a bowl per architecture variable (an optimum ``x0_i`` at fixed N, as Bian et al. 2025b measured
    for hidden size and MLP-to-attention ratio and Kaplan et al. 2020 for the aspect ratio), and optionally a power
    of the GQA group ``G = n_heads / n_kv_heads``.

    Bowls: ``aspect`` (x = R = d_model/n_layers), ``width`` (x = d_model/sqrt(N), Bian 2025b's hidden-size variable),
    ``ffn`` (x = r, the MLP-to-attention parameter ratio). Log space: ``a, b, e, alpha``, per bowl ``log kappa`` and
    ``log x0``, then ``eta`` as is (signed: the data say whether sharing KV heads costs loss at equal N)."""

    def __init__(self, name: str, bowls: tuple[str, ...], gqa: bool):
        self.name, self.bowls, self.gqa = name, bowls, gqa
        nat, log = ["A", "B", "E", "alpha"], ["a", "b", "e", "alpha"]
        for b in bowls:
            nat += _BOWLS[b][0]
            log += _BOWLS[b][1]
        if gqa:
            nat.append("eta")
            log.append("eta")
        self.param_names, self.log_names = tuple(nat), tuple(log)
        self.exponents = ("alpha",)
        self.coefficients = tuple(p for p in nat if p not in ("alpha", "eta"))
        self.needs_aspect_ratio = True  # a shape-aware law: it plans shapes (and reads d_model, n_layers)
        self.needs_arch = tuple(dict.fromkeys(
            ["d_model" for b in bowls if b == "width"] + ["ffn_ratio" for b in bowls if b == "ffn"]
            + (["kv_group"] if gqa else [])))
        self._log_idx = [i for i, p in enumerate(nat) if p in self.coefficients]
        starts = (5e2, 5e2, 2.0, 0.3)
        for b in bowls:
            starts += (1e-2, float(np.exp(np.mean(_BOWLS[b][3]))))
        self.ls_starts = (starts + ((0.0,) if gqa else ()),)

    def _bowl_values(self, n, aspect_ratio, arch: Architecture) -> list[np.ndarray]:
        out = []
        for b in self.bowls:
            if b == "aspect":
                out.append(np.asarray(aspect_ratio, dtype=float))
            elif b == "width":
                out.append(np.asarray(arch.d_model, dtype=float) / np.sqrt(n))
            else:
                out.append(np.asarray(arch.ffn_ratio, dtype=float))
        return out

    def predict(self, params, n_params, n_tokens, aspect_ratio=None, arch=None):
        arch = arch or Architecture()
        self.check_inputs(aspect_ratio if "aspect" in self.bowls else 1.0, arch)
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        A, B, E, alpha = (_col(params, i) for i in range(4))
        loss = E + A * n ** -alpha + B * d ** -alpha
        for j, x in enumerate(self._bowl_values(n, aspect_ratio, arch)):
            kappa, x0 = _col(params, 4 + 2 * j), _col(params, 5 + 2 * j)
            with np.errstate(divide="ignore", invalid="ignore"):
                loss = loss * (1.0 + kappa * np.log(x / x0) ** 2)
        if self.gqa:
            loss = loss * np.asarray(arch.kv_group, dtype=float) ** _col(params, len(self.param_names) - 1)
        return loss

    def to_log(self, params):
        p = np.array(params, dtype=float)
        p[..., self._log_idx] = np.log(p[..., self._log_idx])
        return p

    def from_log(self, theta):
        p = np.array(theta, dtype=float)
        p[..., self._log_idx] = np.exp(p[..., self._log_idx])
        return p

    def _features_of(self, x: Features) -> list[np.ndarray]:
        out = []
        for b in self.bowls:
            if (b == "aspect" and x.log_r is None) or (b == "width" and x.log_w is None) or (b == "ffn" and x.log_f is None):
                self.check_inputs(None if b == "aspect" else 1.0, Architecture())
            out.append(_BOWLS[b][2](x))
        if self.gqa and x.log_g is None:
            self.check_inputs(1.0, Architecture())
        return out

    def log_predict_vjp(self, theta, x):
        theta = np.atleast_2d(theta)
        feats = self._features_of(x)
        a, b, e, alpha = (theta[:, i:i + 1] for i in range(4))
        lse, w1, w2, w3 = _lse3(a - alpha * x.log_n, b - alpha * x.log_d, e)
        parts = []
        for j, f in enumerate(feats):
            kappa = np.exp(theta[:, 4 + 2 * j:5 + 2 * j])
            dev = f - theta[:, 5 + 2 * j:6 + 2 * j]
            term = 1.0 + kappa * dev ** 2
            lse = lse + np.log(term)
            parts.append((kappa, dev, term))
        if self.gqa:
            lse = lse + theta[:, -1:] * x.log_g

        def vjp(u: np.ndarray) -> np.ndarray:
            out, g1, g2 = _terms_vjp(u, w1, w2, w3, theta)
            out[:, 3] = -np.einsum("bn,n->b", g1, x.log_n) - np.einsum("bn,n->b", g2, x.log_d)
            for j, (kappa, dev, term) in enumerate(parts):
                h = u * kappa / term
                out[:, 4 + 2 * j] = (h * dev ** 2).sum(1)
                out[:, 5 + 2 * j] = (h * -2.0 * dev).sum(1)
            if self.gqa:
                out[:, -1] = np.einsum("bn,n->b", u, x.log_g)
            return out

        return lse, vjp

    def huber_grid(self):
        axes: list[list[float]] = [[0.0, 6.0, 12.0, 18.0], [0.0, 6.0, 12.0, 18.0], [0.0, 1.0], [0.3, 0.8, 1.3]]
        for b in self.bowls:
            axes += [[-5.0, -2.0], list(_BOWLS[b][3])]
        if self.gqa:
            axes.append([0.0, 0.05])
        return _grid(*axes)


LAWS: Registry[LawForm] = Registry("law")


def register_law(form: LawForm) -> None:
    LAWS.register(form.name, form)


register_law(ChinchillaFamily("chinchilla", tie_beta=False, shape=False))
register_law(ChinchillaFamily("chinchilla_tied", tie_beta=True, shape=False))
register_law(ChinchillaFamily("inference_aware", tie_beta=True, shape=True, tie_gamma=True))
register_law(ChinchillaFamily("inference_aware_free_gamma", tie_beta=True, shape=True, tie_gamma=False))
register_law(AspectOptimum())
register_law(Kaplan())
register_law(Gadre())
register_law(ConditionalLaw("bian2025b", ("width", "ffn"), gqa=False))
register_law(ConditionalLaw("arch_conditional", ("aspect", "ffn"), gqa=True))


def get_law(name: str) -> LawForm:
    """The law form ``name``; an unknown name is an `InputError` listing the known ones."""
    return LAWS.get(name)
