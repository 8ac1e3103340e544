"""Calibrate a hardware profile's efficiency and overhead terms to measured (or published) latencies.

`LatencyCalibrator` follows the scikit-learn contract: ``__init__`` stores settings, ``fit(observations)`` returns
self and sets ``profile_`` (the calibrated `HardwareProfile`), ``params_``, ``relative_errors_`` and ``cost_``.
The fit is least squares (``scipy.optimize.least_squares``, bounded) on *relative* residuals
``(predicted - measured) / measured`` of every prefill, decode and total time given, so a 2 ms and a 2 s latency
weigh the same. Efficiencies are fitted in log space.

``group_layer_overhead=True`` fits one per-layer overhead per implementation ``group`` (HF's OPT, GPT-NeoX and
open_lm code launch different kernels per layer) sharing the hardware terms; the profile keeps the overhead of
``reference_group``. `bian2025_calibrator` does this for Bian et al.'s published A100 latencies (read by `infscale.latency.io.calibrate_bian2025`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from infscale.arch import PRESETS, TransformerShape, ffn_matrices
from infscale.errors import InputError
from infscale.jsonsafe import is_finite_number
from infscale.latency.model import HARDWARE, MAX_EFFICIENCY, HardwareProfile, Workload, latency_terms

__all__ = [
    "LatencyObservation",
    "LatencyCalibrator",
    "FREE_TERMS",
    "observations_from_records",
    "predict_observations",
    "spread_subset",
    "default_free",
    "BIAN2025_SHAPES",
    "bian2025_calibrator",
    "HoldoutResult",
    "calibration_order",
    "calibrate_holdout",
]

FREE_TERMS = ("compute_efficiency", "memory_efficiency", "layer_overhead_s", "step_overhead_s",
              "attention_efficiency", "cache_bytes", "cache_bandwidth_bytes_per_s")
DEFAULT_FREE = FREE_TERMS[:5]
_LOG_TERMS = ("compute_efficiency", "memory_efficiency", "attention_efficiency", "cache_bytes",
              "cache_bandwidth_bytes_per_s")
_LOG_BOUNDS = {"compute_efficiency": (1e-3, MAX_EFFICIENCY), "memory_efficiency": (1e-3, MAX_EFFICIENCY),
               "attention_efficiency": (1e-4, 10.0), "cache_bytes": (1e4, 1e11), "cache_bandwidth_bytes_per_s": (1e8, 1e14)}
TARGETS = ("prefill_s", "decode_s", "total_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyObservation:
    """A measured (or published) latency of one shape under one workload."""

    shape: TransformerShape
    """The model shape."""
    workload: Workload
    """Batch, lengths, dtype."""
    prefill_s: float | None = None
    """Measured time to first token, if known."""
    decode_s: float | None = None
    """Measured time of the other ``output_len - 1`` tokens, if known."""
    total_s: float | None = None
    """Measured generate time, if known (used when prefill/decode are not)."""
    group: str = ""
    """Implementation family (for per-group layer overheads)."""
    label: str = ""
    """Name shown in reports."""

    def __post_init__(self) -> None:
        for name in TARGETS:
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"LatencyObservation {self.label}: {name} must be positive, got {value!r}")


def _check_record(r: dict[str, Any], where: str) -> None:
    """The fields a measurement record must hold, each checked by name (a latency is a finite number of seconds)."""
    for name in ("shape", "workload"):
        if not isinstance(r.get(name), dict):
            raise InputError(f"{where}: field {name!r} must be an object, got {r.get(name)!r:.60}")
    for name in ("prefill_s", "decode_s", "total_s"):
        value = r.get(name)
        if not is_finite_number(value):
            raise InputError(f"{where}: field {name!r} must be a finite number of seconds, got {value!r:.60}")
    if r["prefill_s"] < 0 or r["total_s"] <= 0:
        bad = "prefill_s" if r["prefill_s"] < 0 else "total_s"
        raise InputError(f"{where}: field {bad!r} must be {'>= 0' if bad == 'prefill_s' else '> 0'}, got {r[bad]}")


STATISTICS = ("median", "min")
"""How a record's repeats become one latency: ``median`` (the record's own figures) or ``min`` (the fastest repeat of
each of prefill, decode and total, from its ``spread``): on a machine where other work runs, interference only ever
adds time, so the minimum is the repeat closest to the machine's own speed."""


def _at_statistic(r: dict[str, Any], statistic: str, where: str) -> dict[str, Any]:
    if statistic == "median":
        return r
    spread = r.get("spread")
    try:
        mins = {k: float(spread[k]["min"]) for k in ("prefill_s", "decode_s", "total_s")}  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise InputError(f"{where}: statistic 'min' needs the record's spread (prefill_s/decode_s/total_s min), "
                         "written by `infscale latency measure`") from None
    return {**r, **mins}


def observations_from_records(records: Iterable[dict[str, Any]], *, source: str = "records",
                              statistic: str = "median") -> list[LatencyObservation]:
    """Observations from measurement records (`latency.measure`) at ``statistic`` (`STATISTICS`); a malformed
    record is an `InputError`."""
    if statistic not in STATISTICS:
        raise InputError(f"statistic {statistic!r}: expected one of {', '.join(STATISTICS)}")
    out = []
    for i, r in enumerate(records, start=1):
        _check_record(r, f"{source}: record {i}")
        r = _at_statistic(r, statistic, f"{source}: record {i}")
        try:
            shape = TransformerShape.from_dict(r["shape"])
            wl = Workload.from_dict(r["workload"])
            # decode = generate - prefill; at or below the timer's noise floor it can come out <= 0: then it
            # carries no information and the observation falls back on total_s
            decode = r.get("decode_s")
            if wl.output_len <= 1 or decode is None or decode <= 0:
                decode = None
            obs = LatencyObservation(shape=shape, workload=wl, prefill_s=r.get("prefill_s"),
                                     decode_s=decode,
                                     total_s=r.get("total_s"), group=r.get("backend", ""),
                                     label=r.get("label", shape.label))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: record {i}: {exc}") from None
        why = _implausible(shape, r.get("n_params"))
        if why:
            raise InputError(f"{source}: record {i}: {why}")
        out.append(obs)
    return out


_MAX_SHAPE = {"d_model": 2 ** 17, "n_layers": 2048, "vocab_size": 2 ** 23}
"""Beyond any model anyone times (the largest dense models: d_model 2^14-2^15, ~120 layers, 256k vocabularies)."""


def _implausible(shape: TransformerShape, n_params: object) -> str | None:
    """Why a timed record cannot be a real measurement: a shape beyond `_MAX_SHAPE`, or a parameter count that is
    not a positive number (backends count parameters their own way, so it is not compared with the shape's)."""
    for name, most in _MAX_SHAPE.items():
        if getattr(shape, name) > most:
            return f"field 'shape.{name}': {getattr(shape, name)} is beyond any timed model (at most {most})"
    if n_params is not None:
        if isinstance(n_params, bool) or not isinstance(n_params, int | float) or not n_params > 0:
            return f"field 'n_params': {n_params!r} is not a positive number"
    return None


def _design(observations: Sequence[LatencyObservation], profile: HardwareProfile) -> dict[str, np.ndarray]:
    sh = [o.shape for o in observations]
    wl = [o.workload for o in observations]
    return {
        "peak": np.array([profile.peak_flops(w.dtype) for w in wl]),
        "d_model": np.array([s.d_model for s in sh]),
        "n_layers": np.array([s.n_layers for s in sh]),
        "d_attn": np.array([s.d_attn for s in sh]),
        "d_kv": np.array([s.d_kv for s in sh]),
        "d_ff": np.array([s.ffn_hidden for s in sh]),
        "ffn_matrices": np.array([ffn_matrices(s.ffn_kind) for s in sh]),
        "vocab_size": np.array([s.vocab_size for s in sh]),
        "batch": np.array([w.batch for w in wl]),
        "input_len": np.array([w.input_len for w in wl]),
        "output_len": np.array([w.output_len for w in wl]),
        "weight_bytes": np.array([w.weight_bytes for w in wl]),
        "kv_bytes": np.array([w.kv_bytes for w in wl]),
        "full_prefill_logits": np.array([w.full_prefill_logits for w in wl]),
    }


def _evaluate(design: dict[str, np.ndarray], profile: HardwareProfile, layer_overhead: np.ndarray | float
              ) -> dict[str, np.ndarray]:
    args = {k: v for k, v in design.items() if k != "peak"}
    out = latency_terms(
        flops_per_s=design["peak"] * profile.compute_efficiency,
        bytes_per_s=profile.memory_bandwidth_bytes_per_s * profile.memory_efficiency,
        layer_overhead_s=layer_overhead, step_overhead_s=profile.step_overhead_s,
        overlap_overhead=profile.overlap_overhead, cache_bytes=profile.cache_bytes,
        cache_bytes_per_s=profile.cache_bandwidth_bytes_per_s, attention_efficiency=profile.attention_efficiency,
        **args,
    )
    out["total_s"] = out["prefill_s"] + out["decode_s"]
    return out


def predict_observations(observations: Sequence[LatencyObservation], profile: HardwareProfile
                         ) -> dict[str, np.ndarray]:
    """Predicted ``prefill_s``, ``decode_s``, ``total_s`` for each observation's shape and workload."""
    return _evaluate(_design(observations, profile), profile, profile.layer_overhead_s)


def default_free(base: HardwareProfile) -> tuple[str, ...]:
    """Terms worth fitting for ``base``: efficiencies (matmul compute and memory, attention) and overheads, plus the
    cache terms when it has a cache."""
    return FREE_TERMS if base.cache_bytes > 0 else DEFAULT_FREE


def spread_subset(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``0..n-1`` (first and last included): a deterministic calibration set."""
    if not 1 <= k <= n:
        raise ValueError(f"spread_subset: need 1 <= k <= n, got k={k}, n={n}")
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, k)})


class LatencyCalibrator:
    """Least-squares fit of a profile's efficiency and overhead terms.

    Parameters
    ----------
    base: the profile whose peaks are kept and whose terms start the fit (and stay fixed unless in ``free``).
    free: which of `FREE_TERMS` to fit.
    targets: which measured times enter the loss (``prefill_s``, ``decode_s``, ``total_s``).
    group_layer_overhead: one per-layer overhead per observation ``group``.
    reference_group: the group whose per-layer overhead the fitted profile keeps (default: the most common).
    name: name of the fitted profile (default: base name + ``-calibrated``).
    """

    def __init__(self, base: HardwareProfile, *, free: Sequence[str] = DEFAULT_FREE,
                 targets: Sequence[str] = ("prefill_s", "decode_s"), group_layer_overhead: bool = False,
                 reference_group: str | None = None, name: str | None = None) -> None:
        self.base = base
        self.free = tuple(free)
        self.targets = tuple(targets)
        self.group_layer_overhead = group_layer_overhead
        self.reference_group = reference_group
        self.name = name

    def _check(self) -> None:
        bad = [t for t in self.free if t not in FREE_TERMS]
        if bad:
            raise ValueError(f"LatencyCalibrator: unknown free term(s) {bad}; known {FREE_TERMS}")
        bad = [t for t in self.targets if t not in TARGETS]
        if bad or not self.targets:
            raise ValueError(f"LatencyCalibrator: targets must be among {TARGETS}, got {self.targets}")

    def fit(self, observations: Sequence[LatencyObservation]) -> LatencyCalibrator:
        self._check()
        obs = list(observations)
        design = _design(obs, self.base)
        measured = {t: np.array([np.nan if getattr(o, t) is None else getattr(o, t) for o in obs]) for t in TARGETS}
        used = {t: ~np.isnan(measured[t]) for t in self.targets}
        n_res = int(sum(u.sum() for u in used.values()))
        groups = sorted({o.group for o in obs}) if self.group_layer_overhead else [""]
        group_idx = np.array([groups.index(o.group) if self.group_layer_overhead else 0 for o in obs])
        fit_layer = "layer_overhead_s" in self.free
        names = [t for t in self.free if t != "layer_overhead_s"]
        if fit_layer:
            names += [f"layer_overhead_s[{g}]" if g else "layer_overhead_s" for g in groups]
        if n_res < len(names):
            raise InputError(f"calibration: {n_res} measured times cannot determine {len(names)} terms ({names})")

        # x: log efficiencies, overheads in milliseconds (keeps the problem well scaled)
        def unpack(x: np.ndarray) -> tuple[HardwareProfile, np.ndarray]:
            values: dict[str, float] = {}
            i = 0
            for t in self.free:
                if t == "layer_overhead_s":
                    continue
                values[t] = float(np.exp(x[i])) if t in _LOG_TERMS else float(x[i]) * 1e-3
                i += 1
            profile = self.base.with_(**values)
            taus = x[i:] * 1e-3 if fit_layer else np.array([self.base.layer_overhead_s])
            return profile, taus

        x0, lo, hi = [], [], []
        for t in names:
            if t in _LOG_TERMS:
                low, high = _LOG_BOUNDS[t]
                x0.append(np.log(np.clip(getattr(self.base, t), low, high)))
                lo.append(np.log(low))
                hi.append(np.log(high))
            else:
                start = getattr(self.base, t.split("[")[0]) * 1e3
                x0.append(max(start, 1e-4))
                lo.append(0.0)
                hi.append(1e4)

        def residuals(x: np.ndarray) -> np.ndarray:
            profile, taus = unpack(x)
            pred = _evaluate(design, profile, taus[group_idx])
            return np.concatenate([(pred[t][used[t]] - measured[t][used[t]]) / measured[t][used[t]]
                                   for t in self.targets])

        # overheads hidden behind device time (overlap) have zero gradient: also start from 10x and 100x larger
        # overheads and keep the best solution
        x0 = np.array(x0)
        is_tau = np.array([t not in _LOG_TERMS for t in names])
        sol = None
        for factor in (1.0, 10.0, 100.0):
            start = np.clip(np.where(is_tau, x0 * factor, x0), lo, hi)
            trial = least_squares(residuals, start, bounds=(np.array(lo), np.array(hi)), x_scale="jac",
                                  method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=5000)
            if sol is None or trial.cost < sol.cost - 1e-15:
                sol = trial
        profile, taus = unpack(sol.x)
        tau_by_group = {g: float(taus[i]) for i, g in enumerate(groups)} if fit_layer else {}
        ref = self.reference_group
        if self.group_layer_overhead:
            if ref is None:
                ref = Counter(o.group for o in obs).most_common(1)[0][0]
            if ref not in groups:
                raise InputError(f"calibration: reference_group {ref!r} is not among the groups {groups}")
        if fit_layer:
            profile = profile.with_(layer_overhead_s=tau_by_group[ref if self.group_layer_overhead else ""])
        sizes = [o.shape.n_params for o in obs]
        labels = [o.label or o.shape.label for o in obs]
        shown = ", ".join(labels[:6]) + (f", ... ({len(labels)} in all)" if len(labels) > 6 else "")
        wl = obs[0].workload
        self.profile_ = profile.with_(
            name=self.name or f"{self.base.name}-calibrated",
            calibrated_on=f"{len(obs)} measured latencies ({shown}; batch {wl.batch}, {wl.input_len} in / "
                          f"{wl.output_len} out, {wl.dtype})",
            calibrated_n_params=(float(min(sizes)), float(max(sizes))))
        self.layer_overhead_by_group_ = tau_by_group
        self.params_ = {t: getattr(self.profile_, t) for t in FREE_TERMS}
        pred = _evaluate(design, self.profile_, taus[group_idx])
        self.relative_errors_ = {t: (pred[t] - measured[t]) / measured[t] for t in TARGETS}
        self.cost_ = float(sol.cost)
        self.n_residuals_ = n_res
        return self

    def predict(self, observations: Sequence[LatencyObservation]) -> dict[str, np.ndarray]:
        """Predictions of the fitted profile (per-group layer overheads where the group was fitted)."""
        if not hasattr(self, "profile_"):
            raise RuntimeError("LatencyCalibrator.predict called before fit")
        obs = list(observations)
        taus = np.array([self.layer_overhead_by_group_.get(o.group, self.profile_.layer_overhead_s)
                         if self.group_layer_overhead else self.profile_.layer_overhead_s for o in obs])
        return _evaluate(_design(obs, self.profile_), self.profile_, taus)


# ---- Bian et al.'s published A100 latencies -----------------------------------------------------------------------------
BIAN2025_SHAPES: dict[str, tuple[TransformerShape, str]] = {
    # open_lm models (one code base: the same kernels per layer)
    "Morph-1B": (PRESETS["morph-1b"], "open_lm"),
    "Morph-1B-v2": (TransformerShape.open_lm(2560, 16, 20), "open_lm"),
    "Open-LM-1B": (PRESETS["open-lm-1b"], "open_lm"),
    # HF implementations of the baselines (published configs)
    "OPT-1.3B": (TransformerShape(d_model=2048, n_layers=24, n_heads=32, d_ff=8192, vocab_size=50272,
                                  tied_embeddings=True, ffn_kind="gelu", norm_kind="layernorm", bias=True,
                                  position="learned"), "opt"),
    "OPT-IML-1.3B": (TransformerShape(d_model=2048, n_layers=24, n_heads=32, d_ff=8192, vocab_size=50272,
                                      tied_embeddings=True, ffn_kind="gelu", norm_kind="layernorm", bias=True,
                                      position="learned"), "opt"),
    "Pythia-1.3B": (TransformerShape(d_model=2048, n_layers=24, n_heads=16, d_ff=8192, vocab_size=50304,
                                     ffn_kind="gelu", norm_kind="layernorm", bias=True), "gpt_neox"),
    "Neox-1.3B": (TransformerShape(d_model=2048, n_layers=24, n_heads=16, d_ff=8192, vocab_size=50257,
                                   tied_embeddings=True, ffn_kind="gelu", norm_kind="layernorm", bias=True,
                                   position="learned"), "gpt_neo"),
}
"""Shapes of the models in Bian et al.'s latency table and their implementation group. Pythia-1.3B is the
``pythia-1.4b-v0`` checkpoint the latency script loads (24 layers; the source CSV's 22 is a transcription slip);
Neox-1.3B is GPT-Neo-1.3B, which the script loads."""

BIAN2025_WORKLOAD = Workload(batch=1, input_len=128, output_len=256, dtype="bf16")
"""Bian et al.'s protocol: HF generate, batch 1, 128 in / 256 out, bf16, one A100-40GB."""


def bian2025_calibrator(observations: Sequence[LatencyObservation], base: HardwareProfile | None = None,
                      name: str = "a100-40gb-bian2025") -> LatencyCalibrator:
    """The calibrator for Bian et al.'s published latencies: it fits the A100 per-layer (one per implementation) and
    per-step overheads.

    The peaks and efficiencies stay at the preset's values: four to seven totals at batch 1 cannot separate them
    from the overheads. The profile keeps the open_lm per-layer overhead (the planner plans open_lm shapes).
    """
    base = base or HARDWARE["a100-40gb"]
    groups = {o.group for o in observations}
    return LatencyCalibrator(base, free=("layer_overhead_s", "step_overhead_s"), targets=("total_s",),
                             group_layer_overhead=len(groups) > 1,
                             reference_group="open_lm" if "open_lm" in groups else None, name=name)


# ---- held-out evaluation ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class HoldoutResult:
    """A calibration on some observations and its relative errors on the others."""

    calibrator: LatencyCalibrator
    """The fitted calibrator (``profile_`` is the calibrated profile)."""
    fit_labels: list[str]
    """Observations the fit saw."""
    test_labels: list[str]
    """Held-out observations."""
    test_errors: dict[str, np.ndarray]
    """Relative errors (predicted / measured - 1) on the held-out observations, per target."""

    def median_abs_error(self, target: str = "decode_s") -> float:
        return float(np.nanmedian(np.abs(self.test_errors[target])))

    def max_abs_error(self, target: str = "decode_s") -> float:
        return float(np.nanmax(np.abs(self.test_errors[target])))


def calibration_order(observations: Sequence[LatencyObservation]) -> list[int]:
    """Indices sorted by (non-embedding parameters, depth): `spread_subset` over this order spans sizes and shapes."""
    return sorted(range(len(observations)),
                  key=lambda i: (observations[i].shape.n_params_non_embedding, observations[i].shape.n_layers))


def calibrate_holdout(observations: Sequence[LatencyObservation], base: HardwareProfile, *, n_fit: int = 5,
                      fit_labels: Sequence[str] | None = None, **calibrator_kwargs: Any) -> HoldoutResult:
    """Fit on ``fit_labels`` (or ``n_fit`` observations spread by `calibration_order`), evaluate on the rest."""
    obs = list(observations)
    if fit_labels is not None:
        known = {o.label for o in obs}
        missing = [lab for lab in fit_labels if lab not in known]
        if missing:
            raise InputError(f"calibration: --fit-on label(s) {missing} not among the records")
        fit_idx = [i for i, o in enumerate(obs) if o.label in set(fit_labels)]
    else:
        if not 1 <= n_fit < len(obs):
            raise InputError(f"calibration: n_fit={n_fit} must be between 1 and {len(obs) - 1} "
                             f"({len(obs)} observations)")
        order = calibration_order(obs)
        fit_idx = sorted(order[j] for j in spread_subset(len(obs), n_fit))
    test_idx = [i for i in range(len(obs)) if i not in set(fit_idx)]
    cal = LatencyCalibrator(base, **calibrator_kwargs).fit([obs[i] for i in fit_idx])
    test = [obs[i] for i in test_idx]
    errors: dict[str, np.ndarray] = {}
    if test:
        pred = cal.predict(test)
        for t in TARGETS:
            meas = np.array([np.nan if getattr(o, t) is None else getattr(o, t) for o in test])
            errors[t] = pred[t] / meas - 1.0
    return HoldoutResult(calibrator=cal, fit_labels=[obs[i].label for i in fit_idx],
                         test_labels=[o.label for o in test], test_errors=errors)
