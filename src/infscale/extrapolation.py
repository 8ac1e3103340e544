"""The one extrapolation and provenance check, shared by fit, plan, select, lifetime, optimum, latency predict and the
report: a number the project prints is only as good as the data behind it, so every output that leaves that data
says so in one line beside it.

- A fitted law carries its `FitRange` (N, D, tokens per parameter, aspect ratio and loss of the runs it was fitted on;
  saved with the law, `infscale.laws.io.save_fit`). `law_warnings` checks a point (a planned shape, a compute-optimal
  allocation, a shortlist entry) against it; a law given by its parameters alone, without a range, is said to be
  unchecked.
- A hardware profile says whether and on what it was calibrated (``calibrated_on``, ``calibrated_n_params``);
  `profile_warnings` flags a datasheet preset that never was, and a model outside the calibrated sizes.

Pure: no I/O, duck-typed on the law's ``meta`` and the profile's fields, so it sits below every layer that uses it.
A value counts as outside when it is beyond the range by more than `SLACK` (relative), so a point on the edge of the
data, or a rounding away from it, is not flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infscale.notices import Notice

__all__ = ["SLACK", "FitRange", "law_range", "law_warnings", "profile_warnings", "outside", "point_warnings",
           "law_quantities"]

SLACK = 0.05
"""Relative margin beyond a range end before a value counts as an extrapolation."""

_QUANTITIES = {"n_params": "N", "n_tokens": "D", "tokens_per_param": "D/N", "aspect_ratio": "d_model/n_layers",
               "ffn_ratio": "MLP/attention ratio", "kv_group": "query heads per KV head", "loss": "loss"}
"""A `FitRange` field -> its symbol in the warning lines."""
_OPTIONAL = ("aspect_ratio", "ffn_ratio", "kv_group")
"""Ranges a law has only when its runs have shapes (and, for the last two, FFN widths and KV heads)."""
_LAW_WHERE = "runs the law was fitted on"
"""How a law-range line names its range (`FitRange.warnings`), as opposed to a profile's."""


def outside(symbol: str, value: float, low: float, high: float, where: str, source: str = "law") -> Notice | None:
    """One `Notice` when ``value`` lies beyond ``[low, high]`` by more than `SLACK`, naming how far; else ``None``."""
    if not (math.isfinite(value) and math.isfinite(low) and math.isfinite(high)):
        return None
    if value > high * (1 + SLACK) if high > 0 else value > high + SLACK * abs(high):
        how = f"{value / high:.3g}x above its largest" if high > 0 and value > 0 else "above its largest"
    elif value < low * (1 - SLACK) if low > 0 else value < low - SLACK * abs(low):
        how = f"{low / value:.3g}x below its smallest" if value > 0 and low > 0 else "below its smallest"
    else:
        return None
    return Notice("extrapolation", f"{symbol} = {value:.4g} is {how} (range {low:.4g} to {high:.4g} {where})",
                  quantity=symbol, value=value, range=(low, high), source=source)


@dataclass(frozen=True, slots=True)
class FitRange:
    """Where a law was fitted: the smallest and largest N, D, D/N, aspect ratio (when the runs have shapes) and loss
    of its fit runs."""

    n_runs: int
    n_params: tuple[float, float]
    n_tokens: tuple[float, float]
    tokens_per_param: tuple[float, float]
    loss: tuple[float, float]
    aspect_ratio: tuple[float, float] | None = None
    ffn_ratio: tuple[float, float] | None = None
    kv_group: tuple[float, float] | None = None

    @classmethod
    def from_arrays(cls, n_params: Sequence[float], n_tokens: Sequence[float], loss: Sequence[float],
                    aspect_ratio: Sequence[float] | None = None, ffn_ratio: Sequence[float] | None = None,
                    kv_group: Sequence[float] | None = None) -> FitRange:
        def span(values: Sequence[float]) -> tuple[float, float]:
            vals = [float(v) for v in values if math.isfinite(float(v))]
            if not vals:
                raise ValueError("FitRange: no finite values")
            return (min(vals), max(vals))

        n, d = [float(v) for v in n_params], [float(v) for v in n_tokens]
        if len(n) != len(d) or not n:
            raise ValueError("FitRange: n_params and n_tokens must be equal-length and non-empty")
        ratios = [dv / nv for nv, dv in zip(n, d, strict=True)]
        def optional(values: Sequence[float] | None) -> tuple[float, float] | None:
            if values is None:
                return None
            finite = [float(v) for v in values if math.isfinite(float(v))]
            return span(finite) if finite else None

        return cls(n_runs=len(n), n_params=span(n), n_tokens=span(d), tokens_per_param=span(ratios), loss=span(loss),
                   aspect_ratio=optional(aspect_ratio), ffn_ratio=optional(ffn_ratio), kv_group=optional(kv_group))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_runs": self.n_runs}
        for name in _QUANTITIES:
            value = getattr(self, name)
            if value is not None:
                out[name] = [value[0], value[1]]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FitRange:
        """Read `to_dict`'s form back; a bad field is a ``ValueError`` naming it."""
        if not isinstance(data, Mapping):
            raise ValueError(f"fit_range: expected a mapping, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for name in _QUANTITIES:
            raw = data.get(name)
            if raw is None:
                if name not in _OPTIONAL:
                    raise ValueError(f"fit_range.{name}: missing")
                continue
            try:
                low, high = (float(v) for v in raw)
            except (TypeError, ValueError):
                raise ValueError(f"fit_range.{name}: expected [low, high], got {raw!r}") from None
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"fit_range.{name}: expected finite low <= high, got {raw!r}")
            values[name] = (low, high)
        n_runs = data.get("n_runs", 0)
        if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 0:
            raise ValueError(f"fit_range.n_runs: expected a count, got {n_runs!r}")
        return cls(n_runs=n_runs, **values)

    def warnings(self, *, n_params: float | None = None, n_tokens: float | None = None,
                 aspect_ratio: float | None = None, loss: float | None = None, ffn_ratio: float | None = None,
                 kv_group: float | None = None) -> list[str]:
        """One line per quantity of the point that lies outside this range (D/N checked whenever N and D are)."""
        point = {"n_params": n_params, "n_tokens": n_tokens, "aspect_ratio": aspect_ratio, "loss": loss,
                 "ffn_ratio": ffn_ratio, "kv_group": kv_group,
                 "tokens_per_param": None if n_params is None or n_tokens is None else n_tokens / n_params}
        where = f"of the {self.n_runs} {_LAW_WHERE}"
        out = []
        for name, symbol in _QUANTITIES.items():
            value, span = point[name], getattr(self, name)
            if value is None or span is None:
                continue
            line = outside(symbol, float(value), span[0], span[1], where)
            if line is not None:
                out.append(line)
        return out


def law_range(meta: Mapping[str, Any]) -> FitRange | None:
    """The `FitRange` a law's ``meta`` carries (``meta["fit_range"]``), or ``None``."""
    raw = meta.get("fit_range") if isinstance(meta, Mapping) else None
    return None if raw is None else (raw if isinstance(raw, FitRange) else FitRange.from_dict(raw))


def law_warnings(meta: Mapping[str, Any], *, n_params: float | None = None, n_tokens: float | None = None,
                 aspect_ratio: float | None = None, loss: float | None = None, ffn_ratio: float | None = None,
                 kv_group: float | None = None) -> list[str]:
    """Extrapolation lines for a point of a law with this ``meta``; one line saying it cannot be checked when the law
    carries no fitted range (a law given by its parameters, or saved before ranges were kept)."""
    rng = law_range(meta)
    if rng is None:
        return [Notice("unchecked", "the law carries no fitted range (given by its parameters, or saved by an older "
                       "version): whether this point extrapolates is unknown; refit and save it with `infscale fit "
                       "--save`", source="law")]
    return rng.warnings(n_params=n_params, n_tokens=n_tokens, aspect_ratio=aspect_ratio, loss=loss,
                        ffn_ratio=ffn_ratio, kv_group=kv_group)


def profile_warnings(profile: Any, n_params: float | None = None) -> list[str]:
    """Provenance lines for a latency predicted on ``profile`` (a `HardwareProfile`): a datasheet preset never
    calibrated, or a model size outside those it was calibrated on."""
    calibrated_on = getattr(profile, "calibrated_on", "")
    name = getattr(profile, "name", "?")
    if not calibrated_on:
        return [Notice("uncalibrated", f"profile {name!r} is a datasheet preset (peak rates with assumed efficiencies "
                       "and overheads, never fitted to measurements): its latencies are estimates; calibrate one with "
                       "`infscale latency measure` + `infscale latency calibrate`", source="profile")]
    span = getattr(profile, "calibrated_n_params", None)
    if n_params is None or span is None:
        return []
    line = outside("N", float(n_params), span[0], span[1], f"of the models profile {name!r} was calibrated on",
                   source="profile")
    return [] if line is None else [line]


def point_warnings(meta: Mapping[str, Any], row: Mapping[str, Any], *, shape_aware: bool = True,
                   profile: Any = None, arch: Sequence[str] = ()) -> list[str]:
    """`law_warnings` for a planned point (a row with ``n_params``, ``n_tokens``, ``aspect_ratio``, ``loss``; the
    aspect ratio only for a ``shape_aware`` law, the one that reads it; ``ffn_ratio`` and ``kv_group`` when named in
    ``arch``, the architecture variables the law reads), then `profile_warnings` when its latency comes from
    ``profile``."""
    out = law_warnings(meta, n_params=row.get("n_params"), n_tokens=row.get("n_tokens"), loss=row.get("loss"),
                       aspect_ratio=row.get("aspect_ratio") if shape_aware else None,
                       ffn_ratio=row.get("ffn_ratio") if "ffn_ratio" in arch else None,
                       kv_group=row.get("kv_group") if "kv_group" in arch else None)
    if profile is not None:
        out += profile_warnings(profile, row.get("n_params"))
    return out


def law_quantities(lines: Sequence[str]) -> list[str]:
    """The symbols (``N``, ``D``, ``D/N``, ...) that the law-range lines among ``lines`` flag, each once, in order:
    the short form of `law_warnings` for a summary (a profile's lines are not the law's)."""
    found = (line.quantity for line in lines
             if isinstance(line, Notice) and line.kind == "extrapolation" and line.source == "law")
    return list(dict.fromkeys(found))
