"""infscale.arch against published parameter counts and closed-form FLOPs."""

import csv
from pathlib import Path

import numpy as np
import pytest

from infscale.arch import PRESETS, TransformerShape, bian2025_params, get_preset, param_count, swiglu_hidden
from infscale.errors import InputError

PUBLISHED = {
    "gpt2-124m": 124_439_808,
    "pythia-1.4b": 1_414_647_808,
    "llama-2-7b": 6_738_415_616,
    "llama-3-8b": 8_030_261_248,
    "morph-1b": 1_668_885_504,
    "open-lm-1b": 1_439_795_200,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_matches_published_count(name):
    assert get_preset(name).n_params == PUBLISHED[name]


def test_every_preset_is_valid_and_positive():
    for name, shape in PRESETS.items():
        assert shape.n_params > shape.n_params_non_embedding > 0, name
        assert TransformerShape.from_dict(shape.to_dict()) == shape


def test_pythia_non_embedding_count():
    assert get_preset("pythia-1.4b").n_params_non_embedding == 1_208_602_624


def test_chinchilla_shape_is_near_its_70b_label():
    # The published shape (d 8192, 80 layers, FFN 32768) gives 64.95B; the paper labels it 70B.
    n = get_preset("chinchilla-70b").n_params
    assert n == 64_950_116_352
    assert 0.9 < n / 70e9 < 1.0


def test_morph_1b_by_bian2025_formula():
    assert int(bian2025_params(3072, 12)) == 1_668_885_504
    assert swiglu_hidden(3072) == 8192


def test_open_lm_configs_match_bian2025_table():
    path = Path(__file__).resolve().parents[1] / "src/infscale/data/bian2025/open_lm_morph_model_configs.csv"
    rows = list(csv.DictReader(path.open()))
    assert len(rows) > 10
    for r in rows:
        d, L, h, ff, V = (int(r[k]) for k in ("d_model", "n_layers", "n_heads", "ffn_hidden_swiglu", "vocab_size"))
        # the table counts attention as 4 d^2 (d_attn = d), also for the two configs whose heads do not divide d
        assert int(param_count(d, L, d, d, ff, V)) == int(r["N_total_formula"]), r["config"]
        if d % h == 0:
            shape = TransformerShape(d_model=d, n_layers=L, n_heads=h, d_ff=ff, vocab_size=V,
                                     tied_embeddings=r["weight_tying"] == "True")
            assert shape.n_params == int(r["N_total_formula"]), r["config"]
            assert shape.n_params_non_embedding == int(r["N_nonembedding"]), r["config"]


def test_vectorised_count_equals_scalar():
    ds = np.array([256, 512, 768, 1024])
    Ls = np.array([4, 8, 12, 16])
    vec = bian2025_params(ds, Ls)
    for d, L, n in zip(ds, Ls, vec, strict=True):
        assert TransformerShape.open_lm(int(d), int(L), 8).n_params == n
    assert param_count(64, 2, 64, 64, 256, 100).shape == ()


def test_prefill_flops_closed_form():
    s = get_preset("llama-2-7b")
    n = 128
    expected = 2 * s.n_params_matmul * n + 2 * s.n_layers * n * (n + 1) * s.d_attn
    assert s.flops_prefill(n) == pytest.approx(expected, rel=1e-12)
    # prefill is the sum of per-token decode steps
    assert s.flops_prefill(n) == pytest.approx(sum(s.flops_decode_token(t) for t in range(1, n + 1)), rel=1e-12)
    # prefix caching: prefill(a) + continue(b) == prefill(a+b)
    assert s.flops_prefill(100) + s.flops_prefill(28, cached=100) == pytest.approx(s.flops_prefill(128), rel=1e-12)


def test_train_flops_close_to_6n():
    s = get_preset("llama-2-7b")
    ratio = s.flops_train_token() / (6 * s.n_params)
    assert 1.0 < ratio < 1.15  # attention adds a few percent at 4k context


def test_kv_cache_bytes_gqa():
    s = get_preset("llama-3-8b")
    # 2 (K,V) x 32 layers x 8 kv heads x 128 dims x 2 bytes = 128 KiB per token
    assert s.kv_cache_bytes(1) == 131072
    assert s.kv_cache_bytes(1000, batch=4) == 4 * 1000 * 131072
    assert get_preset("llama-2-7b").kv_cache_bytes(1) == 4 * 131072


def test_decode_flops_grow_with_context():
    s = get_preset("morph-1b")
    assert s.flops_decode_token(2048) - s.flops_decode_token(1024) == 4 * s.n_layers * 1024 * s.d_attn


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(d_model=100, n_layers=2, n_heads=3),
        dict(d_model=128, n_layers=0, n_heads=4),
        dict(d_model=128, n_layers=2, n_heads=4, n_kv_heads=3),
        dict(d_model=128, n_layers=2, n_heads=4, ffn_kind="relu"),
        dict(d_model=-128, n_layers=2, n_heads=4),
    ],
)
def test_impossible_shapes_raise(kwargs):
    with pytest.raises(ValueError, match="TransformerShape"):
        TransformerShape(**kwargs)


def test_unknown_preset():
    with pytest.raises(InputError, match="unknown shape preset .gpt-5.; known: chinchilla-70b, gpt2-124m"):
        get_preset("gpt-5")


def test_parameter_counts_are_exact_at_any_size():
    """A single shape is counted in Python integers: d_model 1e9 x 1e6 layers would overflow int64 (it printed a
    negative count); grids stay vectorised in int64."""
    from infscale.arch import parse_shape_spec

    d, L, V = 10**9, 10**6, 50432
    s = parse_shape_spec(f"d{d}x{L}")
    h = 256 * -(-(8 * d) // (3 * 256))
    assert s.n_params == L * (4 * d * d + 3 * d * h + 2 * d) + 2 * V * d + d  # exact, > 2**63
    assert s.n_params > 2**63 and isinstance(s.n_params, int)
    grid = param_count(np.array([2048, 3072]), np.array([24, 12]), np.array([2048, 3072]), np.array([2048, 3072]),
                       np.array([5632, 8192]), 50432)
    assert grid.dtype == np.int64 and grid.tolist() == [get_preset("open-lm-1b").n_params,
                                                       get_preset("morph-1b").n_params]
