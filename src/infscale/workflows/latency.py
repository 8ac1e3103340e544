"""The `infscale latency` workflows: `measure` (time every shape of a sweep config into a records file that it
appends to and resumes from), `calibrate` (a hardware profile calibrated on Bian et al.'s published A100 latencies or on
the records of `measure`: fit on some shapes, held-out errors on the others, optionally written as a profile JSON)
and `predict`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infscale.arch import parse_shape_spec
from infscale.configio import check_number, check_output_file
from infscale.errors import InputError
from infscale.extrapolation import profile_warnings
from infscale.latency.model import DTYPE_BYTES, Workload, predict
from infscale.latency.model import predict as predict_one

__all__ = ["Calibration", "Measurement", "calibrate_on_bian2025", "calibrate_on_records", "measure_config",
           "predict_shapes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """The records of a `measure_config` run (each shape of the sweep, the ones kept from an earlier run included)."""

    out: Path
    backend: str
    records: list[dict[str, Any]]


def measure_config(config: Path, out: Path, *, backend: str | None = None, device: str | None = None,
                   redo: Sequence[str] = ()) -> Measurement:
    """Time prefill and decode of every shape of the sweep ``config`` into the records file ``out`` (appended to;
    shapes already there are kept unless named in ``redo``); the backend and device default to the config's."""
    from infscale.latency.io import load_sweep_config  # lazy: scipy
    from infscale.latency.measure import MeasureSettings, get_backend, measure_sweep  # lazy: scipy, torch

    cfg = load_sweep_config(config)
    name = backend or cfg.backend
    get_backend(name)  # a missing backend fails before anything is timed
    settings = MeasureSettings(device=device or cfg.device, threads=cfg.threads, warmup=cfg.warmup,
                               repeats=cfg.repeats)
    records = measure_sweep(cfg.build_shapes(), cfg.workload.build(), out, backend=name, settings=settings,
                            redo=tuple(redo))  # progress: a bar on a terminal, lines otherwise
    return Measurement(out=out, backend=name, records=records)


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """A calibrated profile and the figures that judge it (``summary``, also the profile file's ``meta``)."""

    profile: Any
    summary: dict[str, Any]
    holdout: Any = None
    """The `HoldoutResult` (records calibration only)."""


def calibrate_on_bian2025(name: str | None = None, out: Path | None = None) -> Calibration:
    """The A100 per-layer and per-step overheads fitted to Bian et al.'s published latencies; the Morph-1B vs
    Open-LM-1B ratio it predicts (published: 3.61 s / 1.96 s = 1.84x)."""
    from infscale.latency.calibrate import BIAN2025_SHAPES, BIAN2025_WORKLOAD  # lazy: scipy
    from infscale.latency.io import calibrate_bian2025, save_profile  # lazy: scipy

    if out is not None:
        check_output_file(out)
    cal = calibrate_bian2025(name=name or "a100-40gb-bian2025")
    morph = predict(BIAN2025_SHAPES["Morph-1B"][0], BIAN2025_WORKLOAD, cal.profile_).total_s
    openlm = predict(BIAN2025_SHAPES["Open-LM-1B"][0], BIAN2025_WORKLOAD, cal.profile_).total_s
    summary = {"profile": cal.profile_.to_dict(), "layer_overhead_by_group_s": cal.layer_overhead_by_group_,
               "morph_1b_s": morph, "open_lm_1b_s": openlm, "ratio": openlm / morph, "published_ratio": 3.61 / 1.96,
               "relative_errors_total": cal.relative_errors_["total_s"].tolist()}
    if out:
        save_profile(cal.profile_, out, meta={"source": "Bian et al. published A100 latencies", **summary})
    return Calibration(profile=cal.profile_, summary=summary)


def calibrate_on_records(records: Path, *, base: str = "generic-cpu", n_fit: int = 5,
                         fit_on: Sequence[str] | None = None, free: Sequence[str] | None = None,
                         name: str | None = None, out: Path | None = None, statistic: str = "median") -> Calibration:
    """Fit the ``free`` terms of ``base`` on ``n_fit`` records spread over sizes and shapes (or the ``fit_on``
    labels), report the held-out decode errors."""
    from infscale.latency.calibrate import (  # lazy: scipy
        FREE_TERMS,
        calibrate_holdout,
        default_free,
        observations_from_records,
    )
    from infscale.latency.io import get_profile, measurement_records, save_profile  # lazy: scipy

    if out is not None:
        check_output_file(out)
    obs = observations_from_records(measurement_records(records), source=str(records), statistic=statistic)
    labels = [o.label for o in obs]
    if len(set(labels)) != len(labels):
        raise InputError(f"{records}: several records share a shape label; calibrate one backend/workload per file")
    base_profile = get_profile(base)
    bad = [t for t in free or () if t not in FREE_TERMS]
    if bad:
        raise InputError(f"--free: unknown term(s) {bad}; known: {', '.join(FREE_TERMS)}")
    result = calibrate_holdout(obs, base_profile, n_fit=n_fit, fit_labels=list(fit_on) if fit_on else None,
                               free=tuple(free) if free else default_free(base_profile),
                               name=name or f"{base_profile.name}-calibrated")
    profile = result.calibrator.profile_
    errors = result.test_errors.get("decode_s", np.array([])).tolist()
    summary = {
        "profile": profile.to_dict(), "fit_on": result.fit_labels, "held_out": result.test_labels,
        "held_out_decode_rel_errors": dict(zip(result.test_labels, errors, strict=True)),
        "held_out_decode_median_abs_error": result.median_abs_error() if result.test_labels else None,
        "fit_relative_errors_decode": result.calibrator.relative_errors_["decode_s"].tolist(),
        "statistic": statistic,
    }
    if out:
        save_profile(profile, out, meta={"source": str(records), **summary})
    return Calibration(profile=profile, summary=summary, holdout=result)


def predict_shapes(specs: Sequence[str], hardware: str, *, batch: int = 1, input_len: int = 128,
                   output_len: int = 256, dtype: str = "bf16", vocab_size: int | None = None) -> dict[str, Any]:
    """`infscale latency predict`: prefill, decode and total latency of each shape spec on a hardware profile, with
    its serving memory and, beside each number, what it rests on (`infscale.extrapolation.profile_warnings`: a
    datasheet preset never calibrated, a size outside the calibrated ones)."""
    from infscale.latency.io import get_profile  # lazy: scipy

    for flag, value in (("--batch", batch), ("--input-len", input_len), ("--output-len", output_len),
                        ("--vocab-size", vocab_size)):
        check_number(flag, value, low=1, inclusive=True)
    profile = get_profile(hardware)
    try:
        wl = Workload(batch=batch, input_len=input_len, output_len=output_len, dtype=dtype)
    except ValueError as exc:
        raise InputError(f"workload: {exc}") from None
    rows = []
    for spec in specs:
        shape = parse_shape_spec(spec, vocab_size=vocab_size)
        try:
            p = predict_one(shape, wl, profile)
        except ValueError as exc:
            raise InputError(f"--hardware {hardware}: {exc}") from None
        need = shape.serving_bytes(input_len + output_len, batch, DTYPE_BYTES[dtype])
        rows.append({"shape": spec, "label": shape.label, "n_params": shape.n_params, "prefill_s": p.prefill_s,
                     "decode_s": p.decode_s, "total_s": p.total_s, "decode_per_token_s": p.decode_per_token_s,
                     "memory_bytes": need, "fits_memory": profile.memory_bytes is None or need <= profile.memory_bytes,
                     "warnings": profile_warnings(profile, shape.n_params)})
    return {"hardware": profile.name, "calibrated_on": profile.calibrated_on or None,
            "memory_bytes": profile.memory_bytes, "workload": wl.to_dict(), "predictions": rows}
