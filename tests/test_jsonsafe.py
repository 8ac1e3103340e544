import json
import math

import numpy as np

from infscale.jsonsafe import finite


def test_nested_numpy_and_non_finite_values_become_strict_json():
    obj = {"a": np.float64(1.5), 2: [np.array([1, 2]), (math.nan, -math.inf)], "b": {"c": np.int64(7), "d": 0.25}}
    out = finite(obj)
    assert out == {"a": 1.5, "2": [[1, 2], [None, None]], "b": {"c": 7, "d": 0.25}}
    assert type(out["b"]["c"]) is int
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_numpy_nan_scalar_becomes_none():
    assert finite(np.float32("nan")) is None
    assert finite("text") == "text" and finite(None) is None
