"""Analysis of test-time compute records (pure numpy): accuracy at n with exact expectations and bootstrap intervals,
operating points, the Pareto frontier and compute-optimal choices, error-vs-compute and size fits, saturation."""

from infscale.tts.analysis.accuracy import (
    AGGREGATIONS,
    AccuracyCurve,
    CandidatePools,
    OperatingPoint,
    accuracy_at_n,
    default_ns,
    exact_accuracy_bruteforce,
    pass_at_k,
    strategy_label,
)
from infscale.tts.analysis.fits import ComputeOptimalSizeFit, ErrorComputeFit
from infscale.tts.analysis.frontier import compute_optimal, compute_optimal_sizes, frontier_points
from infscale.tts.analysis.points import operating_points_from_records, pools_from_records

__all__ = [
    "AGGREGATIONS",
    "AccuracyCurve",
    "CandidatePools",
    "OperatingPoint",
    "strategy_label",
    "accuracy_at_n",
    "default_ns",
    "exact_accuracy_bruteforce",
    "pass_at_k",
    "ComputeOptimalSizeFit",
    "ErrorComputeFit",
    "compute_optimal",
    "compute_optimal_sizes",
    "frontier_points",
    "operating_points_from_records",
    "pools_from_records",
]
