"""Loss -> downstream error: the link from a fitted loss law to a task metric.

Two forms, both estimators in the scikit-learn style (``__init__`` stores settings, ``fit`` returns self, learned
values end in ``_``), both invertible in closed form so the planner can ask "what loss reaches this accuracy":

- `ExpErrorLaw` (Gadre et al. 2024, eq. 4): ``Err(L) = eps - k exp(-gamma L)``. The error falls towards
  ``eps - k exp(-gamma L)`` as the loss falls; ``eps`` is the error at infinite loss (chance), and the error at zero
  loss would be ``eps - k``. Fitted by least squares: for each ``gamma`` of a log grid ``(eps, k)`` are linear, the
  best ``gamma`` is then refined by bounded least squares on all three.
- `LogisticErrorLaw`: ``Err(L) = lo + (hi - lo) / (1 + exp(-(L - mid) / scale))``, an S-curve between a floor and
  chance that also saturates at low loss (the exponential form cannot flatten below its own floor).

`heldout_error` fits on the smaller-compute runs and scores the rest, as Gadre et al. validate (predict the larger
runs from the smaller ones); the error is reported in accuracy points.

Pure: numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from infscale.registry import Registry

__all__ = ["ACCURACY_LINKS", "ExpErrorLaw", "HeldoutError", "LogisticErrorLaw", "heldout_error"]


def _check_xy(loss: np.ndarray, err: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(loss, dtype=np.float64).ravel()
    y = np.asarray(err, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{where}: loss and error have different lengths ({x.size} vs {y.size})")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 4:
        raise ValueError(f"{where}: needs at least 4 finite (loss, error) pairs, got {int(ok.sum())}")
    if np.any((y[ok] < 0) | (y[ok] > 1)):
        raise ValueError(f"{where}: errors must be fractions in [0, 1]")
    return x[ok], y[ok]


class _Link:
    """Shared parts: the fitted loss range (for extrapolation warnings) and accuracy = 1 - error."""

    name = ""
    loss_range_: tuple[float, float]

    def predict(self, loss: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def accuracy(self, loss: np.ndarray) -> np.ndarray:
        """``1 - Err(L)``."""
        return 1.0 - self.predict(loss)

    def outside(self, loss: np.ndarray) -> np.ndarray:
        """Mask of the losses outside the range the link was fitted on."""
        lo, hi = self.loss_range_
        x = np.asarray(loss, dtype=np.float64)
        return (x < lo) | (x > hi)

    def to_dict(self) -> dict[str, object]:
        return {"form": self.name, "params": self.params_(), "loss_range": list(self.loss_range_)}

    def params_(self) -> dict[str, float]:  # pragma: no cover - overridden
        raise NotImplementedError


class ExpErrorLaw(_Link):
    """Gadre et al.'s ``Err(L) = eps - k exp(-gamma L)``."""

    name = "exp"

    def __init__(self, gamma_grid: tuple[float, float, int] = (0.05, 20.0, 120)) -> None:
        self.gamma_grid = gamma_grid

    def fit(self, loss: np.ndarray, err: np.ndarray) -> ExpErrorLaw:
        x, y = _check_xy(loss, err, "ExpErrorLaw.fit")
        best = None
        for g in np.geomspace(*self.gamma_grid[:2], int(self.gamma_grid[2])):
            design = np.column_stack([np.ones_like(x), -np.exp(-g * x)])
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            sse = float(np.sum((design @ coef - y) ** 2))
            if coef[1] > 0 and (best is None or sse < best[0]):
                best = (sse, coef[0], coef[1], g)
        if best is None:
            raise ValueError("ExpErrorLaw.fit: the error does not fall with the loss (no k > 0 fits)")
        _, eps, k, g = best
        res = least_squares(lambda p: p[0] - p[1] * np.exp(-p[2] * x) - y, x0=[eps, k, g],
                            bounds=([-np.inf, 1e-12, 1e-6], [np.inf, np.inf, 1e3]))
        self.eps_, self.k_, self.gamma_ = (float(v) for v in res.x)
        self.loss_range_ = (float(x.min()), float(x.max()))
        self.n_points_ = int(x.size)
        self.rmse_ = float(np.sqrt(np.mean(res.fun ** 2)))
        return self

    def predict(self, loss: np.ndarray) -> np.ndarray:
        """Error at each loss, clipped to [0, 1]."""
        x = np.asarray(loss, dtype=np.float64)
        return np.clip(self.eps_ - self.k_ * np.exp(-self.gamma_ * x), 0.0, 1.0)

    def loss_for_error(self, err: np.ndarray) -> np.ndarray:
        """The loss with ``Err(L) = err`` (``-inf`` where ``err`` is at or below the law's floor ``eps - k``, i.e. no
        loss reaches it; ``+inf`` where ``err >= eps``, i.e. any loss does)."""
        e = np.asarray(err, dtype=np.float64)
        gap = (self.eps_ - e) / self.k_
        with np.errstate(divide="ignore", invalid="ignore"):
            out = -np.log(gap) / self.gamma_
        out = np.where(gap >= 1.0, -np.inf, out)
        return np.where(gap <= 0.0, np.inf, out)

    def params_(self) -> dict[str, float]:
        return {"eps": self.eps_, "k": self.k_, "gamma": self.gamma_}

    @classmethod
    def from_params(cls, params: dict[str, float], loss_range: tuple[float, float]) -> ExpErrorLaw:
        law = cls()
        law.eps_, law.k_, law.gamma_ = float(params["eps"]), float(params["k"]), float(params["gamma"])
        law.loss_range_ = (float(loss_range[0]), float(loss_range[1]))
        return law


class LogisticErrorLaw(_Link):
    """``Err(L) = lo + (hi - lo) / (1 + exp(-(L - mid) / scale))``: floor ``lo`` at low loss, ``hi`` at high loss."""

    name = "logistic"

    def fit(self, loss: np.ndarray, err: np.ndarray) -> LogisticErrorLaw:
        x, y = _check_xy(loss, err, "LogisticErrorLaw.fit")
        span = float(np.ptp(x)) or 1.0

        def resid(p: np.ndarray) -> np.ndarray:
            return p[0] + (p[1] - p[0]) / (1.0 + np.exp(-(x - p[2]) / p[3])) - y

        best = None
        for mid in np.quantile(x, [0.25, 0.5, 0.75]):
            for scale in (span / 8, span / 3, span):
                x0 = [max(float(y.min()) - 0.02, 0.0), min(float(y.max()) + 0.02, 1.0), mid, scale]
                res = least_squares(resid, x0=x0, bounds=([0.0, 0.0, -np.inf, 1e-6], [1.0, 1.0, np.inf, np.inf]))
                if best is None or res.cost < best.cost:
                    best = res
        self.lo_, self.hi_, self.mid_, self.scale_ = (float(v) for v in best.x)
        if not self.hi_ > self.lo_:
            raise ValueError("LogisticErrorLaw.fit: the error does not fall with the loss")
        self.loss_range_ = (float(x.min()), float(x.max()))
        self.n_points_ = int(x.size)
        self.rmse_ = float(np.sqrt(np.mean(best.fun ** 2)))
        return self

    def predict(self, loss: np.ndarray) -> np.ndarray:
        x = np.asarray(loss, dtype=np.float64)
        return self.lo_ + (self.hi_ - self.lo_) / (1.0 + np.exp(-(x - self.mid_) / self.scale_))

    def loss_for_error(self, err: np.ndarray) -> np.ndarray:
        """The loss with ``Err(L) = err``; ``-inf`` at or below the floor ``lo``, ``+inf`` at or above ``hi``."""
        e = np.asarray(err, dtype=np.float64)
        frac = (e - self.lo_) / (self.hi_ - self.lo_)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.mid_ + self.scale_ * np.log(frac / (1.0 - frac))
        out = np.where(frac <= 0.0, -np.inf, out)
        return np.where(frac >= 1.0, np.inf, out)

    def params_(self) -> dict[str, float]:
        return {"lo": self.lo_, "hi": self.hi_, "mid": self.mid_, "scale": self.scale_}

    @classmethod
    def from_params(cls, params: dict[str, float], loss_range: tuple[float, float]) -> LogisticErrorLaw:
        law = cls()
        law.lo_, law.hi_ = float(params["lo"]), float(params["hi"])
        law.mid_, law.scale_ = float(params["mid"]), float(params["scale"])
        law.loss_range_ = (float(loss_range[0]), float(loss_range[1]))
        return law


ACCURACY_LINKS: Registry[type] = Registry("accuracy link", normalize=str.lower)
ACCURACY_LINKS.register("exp", ExpErrorLaw)
ACCURACY_LINKS.register("logistic", LogisticErrorLaw)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldoutError:
    """A link fitted on the smaller-compute runs, scored on the larger ones (in accuracy points)."""

    form: str
    n_fit: int
    n_heldout: int
    mae_points: float
    max_points: float
    compute_split: float
    """Runs with compute above this were held out."""

    def to_dict(self) -> dict[str, object]:
        return {"form": self.form, "n_fit": self.n_fit, "n_heldout": self.n_heldout, "mae_points": self.mae_points,
                "max_points": self.max_points, "compute_split": self.compute_split}


def heldout_error(form: str, loss: np.ndarray, err: np.ndarray, compute: np.ndarray,
                  heldout_fraction: float = 0.25) -> HeldoutError:
    """Fit ``form`` on the runs below the ``1 - heldout_fraction`` compute quantile, score the rest."""
    loss, err, compute = (np.asarray(a, dtype=np.float64) for a in (loss, err, compute))
    split = float(np.quantile(compute, 1.0 - heldout_fraction))
    train, test = compute <= split, compute > split
    if test.sum() == 0:
        raise ValueError("heldout_error: no run lies above the compute split")
    law = ACCURACY_LINKS.get(form)().fit(loss[train], err[train])
    miss = 100.0 * np.abs(law.predict(loss[test]) - err[test])
    return HeldoutError(form=form, n_fit=int(train.sum()), n_heldout=int(test.sum()), mae_points=float(miss.mean()),
                        max_points=float(miss.max()), compute_split=split)
