"""Wu et al.'s fits: the compute-optimal model-size law and error vs compute (pure numpy/scipy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ComputeOptimalSizeFit", "ErrorComputeFit"]


class ComputeOptimalSizeFit:
    """Wu et al.'s compute-optimal model-size law ``log10 C = a log10 N + b`` (ordinary least squares on log10 values).

    Wu et al. (Pythia, GSM8K): ``a = 1.19``, ``b = 2.03``. ``predict_n_params`` inverts it: ``N = 10^((log10 C - b) / a)``.
    """

    def __init__(self) -> None:
        pass

    def fit(self, n_params: Sequence[float], flops: Sequence[float]) -> ComputeOptimalSizeFit:
        x = np.log10(np.asarray(n_params, dtype=np.float64))
        y = np.log10(np.asarray(flops, dtype=np.float64))
        if x.size < 2 or np.ptp(x) == 0:
            raise ValueError("the fit needs at least two distinct compute-optimal model sizes")
        design = np.stack([x, np.ones_like(x)], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = y - (a * x + b)
        self.a_, self.b_ = float(a), float(b)
        self.r2_ = float(1 - resid @ resid / max(((y - y.mean()) ** 2).sum(), 1e-300))
        self.n_points_ = int(x.size)
        return self

    @classmethod
    def from_coefficients(cls, a: float, b: float) -> ComputeOptimalSizeFit:
        est = cls()
        est.a_, est.b_, est.r2_, est.n_points_ = float(a), float(b), float("nan"), 0
        return est

    def predict_flops(self, n_params: np.ndarray | float) -> np.ndarray:
        return 10.0 ** (self.a_ * np.log10(np.asarray(n_params, dtype=np.float64)) + self.b_)

    def predict_n_params(self, flops: np.ndarray | float) -> np.ndarray:
        return 10.0 ** ((np.log10(np.asarray(flops, dtype=np.float64)) - self.b_) / self.a_)


class ErrorComputeFit:
    """Error vs inference compute: ``err(C) = err_inf + k * (C / C_ref)^(-gamma)`` (saturating power law).

    ``err_inf`` is the floor the strategy saturates at (Theorems 1-2: accuracy plateaus for a fixed model). Fitted by
    bounded least squares on the error, over a small grid of starts.
    """

    def __init__(self, *, flops_ref: float | None = None) -> None:
        self.flops_ref = flops_ref

    def fit(self, flops: Sequence[float], error: Sequence[float]) -> ErrorComputeFit:
        from scipy.optimize import least_squares  # lazy: scipy

        c = np.asarray(flops, dtype=np.float64)
        e = np.asarray(error, dtype=np.float64)
        if c.size < 3:
            raise ValueError("the fit needs at least three (FLOPs, error) points")
        ref = self.flops_ref or float(np.exp(np.log(c).mean()))
        x = np.log(c / ref)

        def resid(th: np.ndarray) -> np.ndarray:
            return th[0] + np.exp(th[1] - th[2] * x) - e

        best = None
        for floor in (0.0, 0.5 * e.min()):
            for gamma in (0.1, 0.5, 1.0):
                start = np.array([floor, np.log(max(e.mean() - floor, 1e-6)), gamma])
                res = least_squares(resid, start, bounds=([0.0, -50.0, 0.0], [1.0, 50.0, 10.0]))
                if best is None or res.cost < best.cost:
                    best = res
        assert best is not None
        self.flops_ref_ = ref
        self.err_inf_, log_k, self.gamma_ = (float(v) for v in best.x)
        self.k_ = float(np.exp(log_k))
        self.rmse_ = float(np.sqrt(np.mean(best.fun ** 2)))
        return self

    def predict(self, flops: np.ndarray | float) -> np.ndarray:
        x = np.log(np.asarray(flops, dtype=np.float64) / self.flops_ref_)
        return self.err_inf_ + self.k_ * np.exp(-self.gamma_ * x)
