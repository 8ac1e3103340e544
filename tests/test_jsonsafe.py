import json
import math

import numpy as np
import pytest

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


def test_loads_strict_refuses_non_finite_numbers_and_is_finite_number():
    import numpy as np

    from infscale.jsonsafe import is_finite_number, loads_strict

    assert loads_strict('{"a": 1.5, "b": [1, 2]}') == {"a": 1.5, "b": [1, 2]}
    for text in ('{"a": NaN}', "[Infinity]", '{"a": -Infinity}'):
        with pytest.raises(ValueError, match="non-finite number"):
            loads_strict(text)
    assert [is_finite_number(v) for v in (1, 2.5, np.float64(3), np.int64(4))] == [True] * 4
    assert not any(is_finite_number(v) for v in (True, "1", None, float("nan"), float("inf"), [1]))
