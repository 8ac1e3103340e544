"""Shape enumeration: every shape obeys the family rules, counts are exact, and nothing valid is missed."""

import numpy as np
import pytest

from infscale.arch import TransformerShape, get_preset, swiglu_hidden
from infscale.errors import InputError
from infscale.plan.shapes import FAMILIES, ShapeGrid, ShapeRules, enumerate_shapes, get_family, params_band


def _brute_force(rules: ShapeRules, lo: float, hi: float) -> set[tuple[int, int, int, int]]:
    """The same set by explicit loops over TransformerShape (the per-shape reference)."""
    out = set()
    d0 = -(-rules.d_model_min // rules.d_model_multiple) * rules.d_model_multiple
    for d in range(d0, rules.d_model_max + 1, rules.d_model_multiple):
        heads = []
        if rules.n_heads is not None:
            for h in rules.n_heads:
                if d % h == 0 and (rules.head_dims is None or d // h in rules.head_dims):
                    heads.append(h)
        else:
            heads = [d // w for w in rules.head_dims if d % w == 0]
        for h in heads:
            kvs = {k for k in rules.kv_heads if k <= h and h % k == 0}
            if not rules.kv_heads or rules.include_mha:
                kvs.add(h)
            for kv in kvs:
                for layers in range(rules.n_layers_min, rules.n_layers_max + 1, rules.n_layers_step):
                    s = TransformerShape(d_model=d, n_layers=layers, n_heads=h, n_kv_heads=kv, head_dim=d // h,
                                         vocab_size=rules.vocab_size, ffn_kind=rules.ffn_kind,
                                         tied_embeddings=rules.tied_embeddings)
                    if lo <= s.n_params <= hi:
                        out.add((d, layers, h, kv))
    return out


@pytest.mark.parametrize("rules", [
    ShapeRules(head_dims=(64, 128), kv_heads=(1, 2, 4, 8), d_model_max=2048, n_layers_max=24, vocab_size=32000),
    ShapeRules(n_heads=(16,), head_dims=None, d_model_min=256, d_model_max=4096, n_layers_min=2, n_layers_max=30),
    ShapeRules(head_dims=(64,), ffn_kind="gelu", d_model_multiple=64, d_model_max=1536, n_layers_step=2,
               tied_embeddings=True, vocab_size=50304),
])
def test_enumeration_equals_brute_force(rules):
    grid = enumerate_shapes(rules, 2e7, 6e8)
    got = set(zip(grid.d_model.tolist(), grid.n_layers.tolist(), grid.n_heads.tolist(), grid.n_kv_heads.tolist(),
                  strict=True))
    assert len(got) == len(grid)  # no duplicates
    assert got == _brute_force(rules, 2e7, 6e8)
    assert len(grid) > 50


def test_counts_are_exact_and_rules_hold():
    grid = enumerate_shapes(get_family("llama"), 1e8, 1e10)
    assert len(grid) > 10_000
    assert np.all(grid.d_model % 128 == 0)
    assert np.all(np.isin(grid.head_dim, [64, 128]))
    assert np.all(grid.n_heads * grid.head_dim == grid.d_model)
    assert np.all(grid.n_heads % grid.n_kv_heads == 0)
    assert np.all((grid.n_params >= 1e8) & (grid.n_params <= 1e10))
    assert np.all(grid.d_ff == 256 * np.ceil(8 * grid.d_model / 3 / 256))
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(grid), 300):
        assert grid.shape(int(i)).n_params == grid.n_params[i]


def test_bian2025_family_contains_the_published_1b_shapes():
    grid = enumerate_shapes(get_family("bian2025"), *params_band(1e9))
    for name, count in (("morph-1b", 1_668_885_504), ("open-lm-1b", 1_439_795_200)):
        i = grid.find(get_preset(name))
        assert i is not None, name
        assert grid.n_params[i] == count
        assert grid.d_ff[i] == swiglu_hidden(int(grid.d_model[i]))
    # Llama-2-7B is a member of the llama family at its own vocabulary
    llama = enumerate_shapes(get_family("llama"), 6e9, 7e9)
    i = llama.find(get_preset("llama-2-7b"))
    assert i is not None and llama.n_params[i] == 6_738_415_616


def test_grid_helpers():
    grid = ShapeGrid.from_shapes([get_preset("morph-1b"), get_preset("open-lm-1b")])
    assert grid.aspect_ratio.tolist() == [256.0, 2048 / 24]
    assert grid.take([1]).label(0) == "d2048x24 h16"
    both = grid.concat(ShapeGrid.from_shapes([get_preset("open-lm-1b")]))
    assert len(both) == 2
    assert np.array_equal(grid.n_params_non_embedding, grid.n_params - 2 * 50432 * grid.d_model)


def test_bad_rules_and_ranges():
    with pytest.raises(ValueError, match="n_heads or head_dims"):
        ShapeRules(n_heads=None, head_dims=None)
    with pytest.raises(ValueError, match="d_model_multiple"):
        ShapeRules(d_model_multiple=0)
    with pytest.raises(ValueError, match="min_params"):
        enumerate_shapes(FAMILIES["llama"], 2e9, 1e9)
    with pytest.raises(InputError, match="unknown shape family .* known"):
        get_family("nope")
    assert len(enumerate_shapes(FAMILIES["bian2025"], 1.0, 2.0)) == 0


def test_ffn_widths_are_searched_as_multiples_of_d_model():
    rules = ShapeRules(head_dims=(8,), d_model_multiple=8, d_model_min=64, d_model_max=64, n_layers_min=1,
                       n_layers_max=3, ffn_multiple=8, vocab_size=512, tied_embeddings=True, kv_heads=(1, 2),
                       ffn_multipliers=(1.125, 2.75, 5.375))
    grid = enumerate_shapes(rules, 1.0, 1e9)
    # 3 depths x 3 KV choices (1, 2, all) x 3 FFN widths, widths rounded up to the multiple of 8
    assert len(grid) == 27 and sorted(set(grid.d_ff.tolist())) == [72, 176, 344]
    i = int(((grid.n_kv_heads == 2) & (grid.d_ff == 72) & (grid.n_layers == 2)).nonzero()[0][0])
    shape = grid.shape(i)
    assert shape.n_params == grid.n_params[i] and grid.label(i) == "d64x2 h8 kv2 f72"
    assert grid.kv_group[i] == 4 and grid.ffn_ratio[i] == pytest.approx(3 * 72 / (2 * 8 * (8 + 2)))
    with pytest.raises(ValueError, match="ffn_multipliers must hold positive numbers"):
        ShapeRules(ffn_multipliers=(0.0,))
