"""Measurement protocol on a tiny shape: token counts, record contents, append-only records and resume."""

import json

import pytest
import torch

from infscale.arch import TransformerShape, parse_shape_spec
from infscale.errors import InputError
from infscale.latency.io import latest_records, read_measurements
from infscale.latency.measure import (
    BACKENDS,
    MeasureSettings,
    get_backend,
    measure_one,
    measure_sweep,
    resolve_device,
)
from infscale.latency.model import Workload
from infscale.train.model import LlamaModel

TINY = [TransformerShape(d_model=64, n_layers=L, n_heads=2, d_ff=128, vocab_size=97, context_length=64)
        for L in (1, 2, 3)]
WL = Workload(batch=2, input_len=8, output_len=5, dtype="fp32")
FAST = MeasureSettings(device="cpu", warmup=1, repeats=3)


@pytest.mark.parametrize("name", ["own", "hf"])
def test_backends_generate_exactly_the_asked_tokens(name):
    runner = get_backend(name).load(TINY[1], WL, torch.device("cpu"), seed=0)
    for n in (1, 5):
        assert tuple(runner.generate(n).shape) == (2, n)


def test_own_backend_decodes_greedily():
    # the KV-cached loop picks the argmax of a full forward over the growing sequence
    runner = get_backend("own").load(TINY[1], WL, torch.device("cpu"), seed=3)
    new = runner.generate(4)
    torch.manual_seed(3)
    model = LlamaModel(TINY[1]).eval()
    seq = runner.ids
    with torch.no_grad():
        for k in range(4):
            nxt = model(seq)[:, -1].argmax(-1)
            assert torch.equal(nxt, new[:, k])
            seq = torch.cat([seq, nxt[:, None]], dim=1)


def test_measure_one_record_contents():
    r = measure_one(TINY[0], WL, "own", FAST)
    assert r["label"] == "d64x1" and r["backend"] == "own"
    assert len(r["runs"]["prefill_s"]) == 3 and len(r["runs"]["total_s"]) == 3
    assert all(t > 0 for t in r["runs"]["prefill_s"] + r["runs"]["total_s"])
    decodes = sorted(t - p for t, p in zip(r["runs"]["total_s"], r["runs"]["prefill_s"], strict=True))
    assert r["decode_s"] == pytest.approx(decodes[1])  # median of the per-pair differences
    assert r["spread"]["decode_s"]["min"] <= r["decode_s"] <= r["spread"]["decode_s"]["max"]
    assert r["workload"]["full_prefill_logits"] is True  # model(ids) computes every position's logits
    assert r["env"]["device"] == "cpu" and r["env"]["torch"] == torch.__version__ and r["env"]["torch_threads"] >= 1
    assert TransformerShape.from_dict(r["shape"]) == TINY[0]
    json.dumps(r)  # JSON-ready


def test_sweep_interrupted_keeps_records_and_resume_skips_them(tmp_path, capsys, progress_lines):
    out = tmp_path / "rec.jsonl"
    seen = []

    def stop_after_two(record, done, total):
        seen.append(record["label"])
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        measure_sweep(TINY, WL, out, "own", FAST, progress=stop_after_two)
    kept = read_measurements(out)
    assert [r["label"] for r in kept] == ["d64x1", "d64x2"]
    # off a terminal: one progress line per shape timed, with its ETA
    assert progress_lines(capsys.readouterr().err, "latency own") == [(1, 3), (2, 3)]

    resumed = []
    records = measure_sweep(TINY, WL, out, "own", FAST, progress=lambda r, d, t: resumed.append((r["label"], t)))
    assert resumed == [("d64x3", 1)]  # only the missing shape was measured
    assert progress_lines(capsys.readouterr().err, "latency own") == [(1, 1)]
    assert sorted(r["label"] for r in records) == ["d64x1", "d64x2", "d64x3"]
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["key"] == kept[0]["key"]  # appended, never rewritten
    assert measure_sweep(TINY, WL, out, "own", FAST, progress=lambda *a: pytest.fail("re-measured")) == records

    # --redo: a new record is appended and supersedes the old one for every reader
    again = measure_sweep(TINY, WL, out, "own", FAST, redo=["d64x2"])
    assert len(out.read_text().splitlines()) == 4
    latest = {r["label"]: r for r in latest_records(read_measurements(out))}
    assert len(latest) == 3 and latest["d64x2"]["runs"] == {r["label"]: r for r in again}["d64x2"]["runs"]
    assert latest["d64x2"]["runs"] != {r["label"]: r for r in records}["d64x2"]["runs"]


def test_read_records_tolerates_only_a_truncated_last_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"key": "a"}\n{"key": "b"}\n{"key": "c", "tru')
    assert [r["key"] for r in read_measurements(path)] == ["a", "b"]
    path.write_text('{"key": "a"}\nnot json\n{"key": "b"}\n')
    with pytest.raises(InputError, match="r.jsonl:2"):
        read_measurements(path)
    with pytest.raises(InputError, match="no such"):
        read_measurements(tmp_path / "missing.jsonl")


def test_bad_input_errors():
    with pytest.raises(InputError, match="not divisible"):
        parse_shape_spec("d100x2h3")
    with pytest.raises(InputError, match="n_layers"):
        parse_shape_spec("d128x0")
    with pytest.raises(InputError, match="expected"):
        parse_shape_spec("wide-and-shallow")
    with pytest.raises(InputError, match="unknown latency backend"):
        get_backend("tensorrt")
    with pytest.raises(InputError, match="dtype"):
        get_backend("own").load(TINY[0], Workload(dtype="int8"), torch.device("cpu"), 0)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
    with pytest.raises(InputError, match="hf/vllm backends build a Llama"):
        get_backend("hf").load(TINY[0].with_(ffn_kind="gelu"), WL, torch.device("cpu"), 0)


def test_vllm_backend_missing_is_a_clear_error():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="'vllm'.*not installed"):
            get_backend("vllm")
    else:
        assert get_backend("vllm").name == "vllm"
    assert set(BACKENDS) == {"own", "hf", "vllm"}


def test_spec_parsing():
    s = parse_shape_spec("d256x4h8kv2f672v4096")
    assert (s.d_model, s.n_layers, s.n_heads, s.kv_heads, s.ffn_hidden, s.vocab_size) == (256, 4, 8, 2, 672, 4096)
    assert parse_shape_spec("d256x4").n_heads == 4
    assert parse_shape_spec("morph-1b").d_model == 3072


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_measurement_synchronises():
    r = measure_one(TINY[1], WL, "own", MeasureSettings(device="cuda", repeats=2))
    assert r["env"]["device"].startswith("cuda") and "cuda" in r["env"]


def test_sweeps_time_shapes_interleaved_round_robin(tmp_path, monkeypatch):
    """Each repeat times one pair of every shape of a group in turn, so a burst of load hits them alike."""
    from infscale.arch import TransformerShape
    from infscale.latency.measure import MeasureSettings, measure_sweep
    from infscale.latency.model import Workload

    calls: list[tuple[str, int]] = []

    class Runner:
        def __init__(self, label):
            self.label = label

        def generate(self, n):
            calls.append((self.label, n))

        def close(self):
            calls.append((self.label, -1))

    class Recording:
        name = "recording"
        full_prefill_logits = True
        interleavable = True

        def load(self, shape, workload, device, seed):
            return Runner(shape.label)

        def versions(self):
            return {}

    shapes = [TransformerShape(d_model=64 * k, n_layers=2, n_heads=2, vocab_size=64, context_length=64)
              for k in (1, 2, 3)]
    import infscale.latency.measure as m

    monkeypatch.setattr(m, "get_backend", lambda name: Recording())
    recs = measure_sweep(shapes, Workload(batch=1, input_len=4, output_len=3, dtype="fp32"), tmp_path / "r.jsonl",
                         backend="recording", settings=MeasureSettings(device="cpu", warmup=1, repeats=2,
                                                                       interleave=2))
    a, b, c = (s.label for s in shapes)
    timed = [x for x in calls if x[1] > 0]
    # group 1 (a, b): warm-up a, b, then (a, b) twice; group 2: c alone
    assert timed == [(a, 1), (a, 3), (b, 1), (b, 3)] * 1 + [(a, 1), (a, 3), (b, 1), (b, 3)] * 2 + [(c, 1), (c, 3)] * 3
    assert [r["protocol"]["interleave"] for r in recs] == [2, 2, 2]
    assert [r["label"] for r in recs] == [a, b, c]

    # a backend whose loaded shapes cannot sit side by side (vLLM engines) is timed one shape at a time
    calls.clear()
    Recording.interleavable = False
    measure_sweep(shapes, Workload(batch=1, input_len=4, output_len=3, dtype="fp32"), tmp_path / "s.jsonl",
                  backend="recording", settings=MeasureSettings(device="cpu", warmup=0, repeats=2, interleave=2))
    assert [x for x in calls if x[1] > 0] == [(a, 1), (a, 3)] * 2 + [(b, 1), (b, 3)] * 2 + [(c, 1), (c, 3)] * 2
