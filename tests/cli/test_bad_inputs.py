"""The bad-input table: every command that reads a file or a flag, given what a careless or hostile user would give
it, exits 2 with one line that names the file, row, flag or field, no traceback, and nothing written.

Run in-process (`infscale.cli.main.main` with its argv) so that some 300 cases take seconds; tests/cli/test_bad_flags.py
holds a smaller table run as real processes. The controls at the end (valid inputs) must pass.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from infscale.cli.main import main

LAW = {"law": "inference_aware", "params": {"A": 54754.3, "B": 778343.0, "E": 2.44751, "alpha": 0.614574,
                                             "eps": 0.00114621}}
PLAN = ("plan", "--law", "law.json", "--hardware", "a100-40gb-bian2025", "--tokens", "29e9", "--params", "1e9")
LIFE = ("lifetime", "--law", "law.json", "--loss-target", "2.9", "--aspect-ratio", "256")
PREDICT = ("latency", "predict", "--shape", "d128x2")


def run_cli(args: tuple[str, ...], cwd: Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``infscale ARGS`` run in this process from ``cwd``."""
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["infscale", *args]
    code = 0
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = old_argv
    return code, out.getvalue(), err.getvalue()


# ----- the cases -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    needle: str
    """What the one error line must contain (the file, flag or field it names)."""
    files: dict[str, str | bytes | None] = field(default_factory=dict)
    """Files to create first (``None``: a directory)."""


# what a file can be instead of what a command expects: (kind, content); the needle is the file's name
CORRUPT: list[tuple[str, str | bytes | None]] = [
    ("directory", None),
    ("empty", ""),
    ("binary", b"\x00\x01\x02\x03\xff\xfe" * 8),
    ("not-utf8", "name: caf\xe9\nx: 1\n".encode("latin-1")),
]
SYNTAX = {"yaml": "a: [1, 2\nb: {", "json": '{"law": ', "jsonl": '{"a": 1}\n{"b": \n{"c": 3}\n',
          "csv": 'N,D,loss\n1,2,"3\n', "txt": ""}
WRONG_KIND = {"yaml": "- 1\n- 2\n", "json": "[1, 2, 3]", "jsonl": "[1, 2]\n[3, 4]\n", "csv": "a,b\n1,2\n", "txt": ""}

# (command with {F} where the file goes, the file's extension)
FILE_COMMANDS: list[tuple[str, tuple[str, ...], str]] = [
    ("fit --data", ("fit", "--data", "{F}", "--no-plot", "--bootstrap", "0"), "csv"),
    ("plan --law", ("plan", "--law", "{F}", "--params", "1e9", "--tokens", "1e9"), "json"),
    ("plan --hardware", ("plan", "--law", "law.json", "--hardware", "{F}", "--params", "1e9", "--tokens", "1e9"),
     "json"),
    ("plan --measured", (*PLAN, "--measured", "{F}"), "csv"),
    ("lifetime --law", ("lifetime", "--law", "{F}", "--loss-target", "2.9", "--aspect-ratio", "256"), "json"),
    ("select", ("select", "{F}"), "yaml"),
    ("train", ("train", "{F}"), "yaml"),
    ("sweep", ("sweep", "{F}"), "yaml"),
    ("runs", ("runs", "{F}"), "jsonl"),
    ("demo --config", ("demo", "--quick", "--config", "{F}"), "yaml"),
    ("tts run", ("tts", "run", "{F}"), "yaml"),
    ("tts analyze", ("tts", "analyze", "{F}", "--no-plot"), "jsonl"),
    ("tts mini", ("tts", "mini", "{F}", "--no-plot"), "yaml"),
    ("latency measure", ("latency", "measure", "{F}", "--out", "r.jsonl"), "yaml"),
    ("latency predict --hardware", (*PREDICT, "--hardware", "{F}"), "json"),
    ("latency calibrate", ("latency", "calibrate", "{F}"), "jsonl"),
    ("latency plot", ("latency", "plot", "{F}", "--hardware", "generic-cpu"), "jsonl"),
]


CONTROL_FILES = {("empty", "demo --config"), ("empty", "runs")}
"""Empty files that are valid input: an empty overlay changes nothing, an empty records file lists no runs."""


def _file_cases() -> list[Case]:
    cases = []
    for name, template, ext in FILE_COMMANDS:
        fname = f"in.{ext}"
        args = tuple(fname if a == "{F}" else a for a in template)
        cases.append(Case(f"{name} missing", args, fname))
        variants = [*CORRUPT, ("syntax", SYNTAX[ext]), ("wrong-kind", WRONG_KIND[ext])]
        for kind, content in variants:
            if (kind in ("syntax", "wrong-kind") and content == "") or (kind, name) in CONTROL_FILES:
                continue
            cases.append(Case(f"{name} {kind}", args, fname, {fname: content}))
    return cases


def _flag_cases() -> list[Case]:
    """Numeric flags given 0, a negative number, nan and inf (where each is wrong)."""
    cases = []
    spec = [
        # (command, flag, bad values)
        (PLAN, "--params", ("0", "-1", "nan", "inf")),
        (PLAN, "--params-band", ("0.5", "0", "nan", "inf")),
        (PLAN, "--min-params", ("0", "-1", "nan", "inf")),
        (PLAN, "--max-params", ("0", "-1", "nan", "inf")),
        (PLAN, "--tokens", ("0", "-1", "nan", "inf")),
        (PLAN, "--max-tokens", ("0", "-1", "nan", "inf")),
        (PLAN, "--max-train-flops", ("0", "-1", "nan", "inf")),
        (PLAN, "--max-latency", ("0", "-2", "nan", "inf")),
        (PLAN, "--vocab-size", ("0", "-1")),
        (PLAN, "--batch", ("0", "-1")),
        (PLAN, "--prompt-tokens", ("-1",)),
        (PLAN, "--new-tokens", ("0", "-1")),
        (PLAN, "--top", ("-1",)),
        (LIFE, "--loss-target", ("0", "-1", "nan", "inf")),
        (LIFE, "--prefill-tokens", ("-1", "nan", "inf")),
        (LIFE, "--decode-tokens", ("-1", "nan", "inf")),
        (LIFE, "--aspect-ratio", ("0", "-1", "nan", "inf")),
        (LIFE, "--usd-per-hour", ("0", "-1", "nan", "inf")),
        (LIFE, "--peak-flops", ("0", "-1", "nan", "inf")),
        (LIFE, "--util-train", ("0", "-1", "1.5", "nan")),
        (LIFE, "--util-prefill", ("0", "-1", "1.5", "nan")),
        (LIFE, "--util-decode", ("0", "-1", "1.5", "nan")),
        (PREDICT, "--batch", ("0", "-1")),
        (PREDICT, "--input-len", ("0", "-1")),
        (PREDICT, "--output-len", ("0", "-1")),
        (PREDICT, "--vocab-size", ("0", "-1")),
        (("fit", "--no-plot"), "--bootstrap", ("-1", "100000000")),
        (("fit", "--no-plot"), "--seed", ("-1",)),
        (("tts", "analyze", "--wu2025", "--no-plot"), "--bootstrap", ("-1", "1000000000")),
        (("tts", "analyze", "--wu2025", "--no-plot"), "--seed", ("-1",)),
        (("latency", "calibrate", "lat.jsonl"), "--n-fit", ("0", "-1")),
        (("tts", "train"), "--policy-steps", ("0", "-1")),
        (("tts", "train"), "--lm-steps", ("0", "-1")),
        (("tts", "train"), "--seed", ("-1",)),
        (("sweep", "sweep.yaml"), "--workers", ("0", "-1")),
        (("tts", "run", "tts.yaml"), "--max-problems", ("0", "-1")),
    ]
    for base, flag, values in spec:
        for v in values:
            cases.append(Case(f"{base[0]} {flag} {v}", (*base, flag, v), flag))
    names = [
        (("fit", "--no-plot", "--law", "gompertz"), "gompertz"),
        (("fit", "--no-plot", "--fitter", "adam"), "adam"),
        (("fit", "--no-plot", "--baseline", "gompertz"), "gompertz"),
        (("fit", "--no-plot", "--data", "seed-z"), "seed-z"),
        (("fit", "--no-plot", "--fit-on", "N <<< 3"), "--fit-on"),
        (("fit", "--no-plot", "--fit-on", "nonexistent_column > 3"), "nonexistent_column"),
        (("fit", "--no-plot", "--fit-on", "N < 0"), "--fit-on"),
        ((*PLAN, "--family", "rnn"), "rnn"),
        ((*PLAN, "--baseline", "gpt-17"), "gpt-17"),
        (("plan", "--law", "law.json", "--hardware", "tpu-v9", "--params", "1e9", "--tokens", "1e9"), "tpu-v9"),
        ((*PREDICT, "--hardware", "tpu-v9"), "tpu-v9"),
        ((*PREDICT, "--dtype", "fp3"), "fp3"),
        (("latency", "predict", "--shape", "d12x"), "d12x"),
        (("latency", "predict", "--shape", "gpt-17"), "gpt-17"),
        (("latency", "calibrate", "lat.jsonl", "--base", "tpu-v9"), "tpu-v9"),
        (("latency", "calibrate", "lat.jsonl", "--free", "warp_factor"), "warp_factor"),
        (("latency", "calibrate", "lat.jsonl", "--fit-on", "d9x9"), "d9x9"),
        (("latency", "measure", "lat.yaml", "--out", "r.jsonl", "--backend", "tensorrt"), "tensorrt"),
        (("latency", "measure", "lat.yaml", "--out", "r.jsonl", "--device", "tpu:7"), "tpu:7"),
        (("latency", "measure", "lat.yaml", "--out", "r.jsonl", "--redo", "d9x9"), "d9x9"),
        (("latency", "plot", "lat.jsonl", "--hardware", "tpu-v9"), "tpu-v9"),
        (("sweep", "sweep.yaml", "--executor", "slurm"), "slurm"),
        (("tts", "analyze", "--wu2025", "--no-plot", "--accounting", "mine"), "mine"),
        (("tts", "analyze", "--no-plot"), "records"),
        (("tts", "mini", "no_such_recipe"), "no_such_recipe"),
        (("select", "no_such_recipe"), "no_such_recipe"),
        (("train", "no_such_recipe"), "no_such_recipe"),
        (("lifetime", "--law", "law.json", "--aspect-ratio", "256"), "--loss-target"),
        (("lifetime", "--law", "law.json", "--loss-target", "2.9", "--budget", "1e24", "--aspect-ratio", "256"),
         "--budget"),
        (("lifetime", "--law", "law.json", "--loss-target", "1.0", "--aspect-ratio", "256"), "--loss-target 2.533"),
    ]
    cases += [Case(" ".join(a[:3]) + f" {needle}", a, needle) for a, needle in names]
    return cases


def _yaml(d: dict) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False)


TTS_OK = {"run": "r", "out_dir": "runs", "task": {"name": "arith", "params": {"n_problems": 4}},
          "generator": {"name": "scripted"}, "reward": {"name": "verifier"},
          "strategies": [{"name": "greedy"}, {"name": "weighted_vote", "budgets": [2]}]}
MEASURE_OK = {"device": "cpu", "threads": 1, "warmup": 0, "repeats": 1, "vocab_size": 97,
              "workload": {"input_len": 4, "output_len": 4}, "shapes": ["d64x1h2f128"]}
TRAIN_OK = {"model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "context_length": 32},
            "data": {"corpus": "corpus", "vocab_size": 300}, "batch_size": 4, "tokens": 4096, "threads": 1,
            "progress": False}
SWEEP_OK = {"base": {k: v for k, v in TRAIN_OK.items() if k != "tokens"}, "groups": [{"name": "a", "shapes": [{"d_model": 32, "n_layers": 1, "n_heads": 2}],
                                         "tokens_per_param": [1.0]}]}
PROFILE_OK = {"profile": {"name": "p", "peak_flops_per_s": {"bf16": 1e12, "fp32": 5e11},
                          "memory_bandwidth_bytes_per_s": 1e10, "memory_bytes": 8e9, "compute_efficiency": 0.5}}


def _over(base: dict, path: str, value: object) -> dict:
    """``base`` with the dotted ``path`` set to ``value`` (``...``: the key removed)."""
    out = json.loads(json.dumps(base))
    node = out
    *head, last = path.split(".")
    for k in head:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    if value is ...:
        node.pop(last)
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


def _config_cases() -> list[Case]:
    """Config files that parse but hold a wrong value: the message names the field."""
    cases = []
    tts = [("run", "../x"), ("run", ""), ("run", "x" * 300), ("run", "/abs"), ("search.temperature", -1),
           ("search.temperature", float("nan")), ("search.top_p", 5), ("search.top_p", 0), ("search.max_tokens", 0),
           ("search.max_step_tokens", 0), ("search.rebase_temperature", 0), ("search.beam_width", 0),
           ("search.depth_cap", 0), ("search.mcts_c", -1), ("search.aggregation", "median"), ("strategies", []),
           ("strategies.1.budgets", [10 ** 12]), ("strategies.1.budgets", [0]), ("strategies.1.budgets", []),
           ("strategies.0.name", "dfs"), ("max_problems", -1), ("max_problems", 0), ("seed", -1), ("seed", "x"),
           ("task.name", "chess"), ("task.params.n_problems", 0), ("task.params", {"colour": 1}),
           ("generator.name", "gpt5"), ("generator.params", {"temperature": 1}), ("reward.name", "oracle"),
           ("reward", ...), ("task", ...), ("bogus_key", 1), ("search.bogus", 1)]
    for path, value in tts:
        needle = {"run": "run", "reward": "reward", "task": "task"}.get(path, path.split(".")[-1])
        if path == "reward":
            needle = "reward"
        if path in ("task.params", "generator.params"):
            needle = "colour" if path == "task.params" else "temperature"
        if path.endswith(".name"):
            needle = str(value)
        cases.append(Case(f"tts run {path}={value!r:.20}", ("tts", "run", "c.yaml"), needle,
                          {"c.yaml": _yaml(_over(TTS_OK, path, value)).replace(".nan", ".nan")}))
    gsm = _over(TTS_OK, "task", {"name": "gsm", "params": {"path": "gsm.jsonl", "offset": -1}})
    cases.append(Case("tts run gsm offset -1", ("tts", "run", "c.yaml"), "offset",
                      {"c.yaml": _yaml(gsm), "gsm.jsonl": '{"question": "1+1?", "answer": "#### 2"}\n'}))
    for kind, content in [("directory", None), ("binary", b"\x00\xff" * 10), ("missing", "")]:
        files = {"c.yaml": _yaml(_over(gsm, "task.params.offset", 0))}
        if kind != "missing":
            files["gsm.jsonl"] = content
        cases.append(Case(f"tts run gsm path {kind}", ("tts", "run", "c.yaml"), "gsm.jsonl", files))
    dup = {"c.yaml": _yaml(_over(TTS_OK, "task", {"name": "gsm", "params": {"path": "p.jsonl"}}))}
    for name, rows, needle in (  # benchmarks in their public formats: the file and row of the bad field
            ("gsm", '{"question": "a", "answer": "#### 2"}\n{"question": "b", "answer": "#### two"}\n',
             "p.jsonl:2: the answer's final line '#### two' is not a number"),
            ("gsm", '{"question": "a"}\n', "p.jsonl:1: missing field 'answer'"),
            ("math", '{"problem": "a", "answer": "1"}\n{"answer": "2"}\n', "p.jsonl:2: missing field 'problem'"),
            ("math", '{"problem": "a", "answer": "\\\\frac{"}\n', "p.jsonl:1: math-verify cannot parse the answer")):
        cfg = _over(TTS_OK, "task", {"name": name, "params": {"path": "p.jsonl"}})
        cfg["strategies"] = [{"name": "weighted_vote", "budgets": [2]}]
        cases.append(Case(f"tts run {name} {needle[:30]}", ("tts", "run", "c.yaml"), needle,
                          {"c.yaml": _yaml(cfg), "p.jsonl": rows}))
    measure = [("repeats", 0), ("warmup", -1), ("shapes", []), ("shapes", ["d12x"]), ("device", "tpu:7"),
               ("workload.input_len", 0), ("workload.output_len", -1), ("vocab_size", 0), ("threads", 0),
               ("backend", "tensorrt"), ("bogus", 1), ("shapes", ["d16384x64"])]
    for path, value in measure:
        needle = {"shapes": "shape", "device": "tpu:7", "backend": "tensorrt"}.get(path, path.split(".")[-1])
        cases.append(Case(f"latency measure {path}={value!r:.20}", ("latency", "measure", "m.yaml", "--out", "r.jsonl"),
                          needle, {"m.yaml": _yaml(_over(MEASURE_OK, path, value))}))
    train = [("optim", {"beta1": 5}), ("device", "tpu:7"), ("model.d_model", 1e30), ("tokens_per_param", float("inf")),
             ("optim", {"lr": float("inf")}), ("data.vocab_size", 10 ** 9), ("tokens", 10 ** 30), ("run_id", "../x"),
             ("run_id", ""), ("batch_size", 0), ("bogus", 1), ("model.n_heads", 3), ("data.corpus", "nowhere"),
             ("memory_limit_gb", 1e-9), ("model.d_model", -32), ("group", "a/b")]
    for path, value in train:
        needle = {"optim": next(iter(value)) if isinstance(value, dict) else "", "device": "device",
                  "data.corpus": "nowhere", "memory_limit_gb": "GB", "model.n_heads": "n_heads"}.get(
            path, path.split(".")[-1])
        cases.append(Case(f"train {path}={value!r:.20}", ("train", "t.yaml"), needle,
                          {"t.yaml": _yaml(_over(TRAIN_OK, path, value))}))
    sweep = [("groups.0.name", "../s"), ("groups.0.name", "a/b"), ("groups", []), ("executor", "slurm"),
             ("groups.0.tokens_per_param", [-1]), ("groups.0.bogus", 1), ("workers", 0)]
    for path, value in sweep:
        needle = {"groups.0.name": "name", "executor": "slurm"}.get(path, path.split(".")[-1])
        cases.append(Case(f"sweep {path}={value!r:.20}", ("sweep", "s.yaml"), needle,
                          {"s.yaml": _yaml(_over(SWEEP_OK, path, value))}))
    demo = [("plan_a100.max_latency_s", float("inf")), ("latency.repeats", 0), ("tts.unknown_key", 1),
            ("bogus", 1), ("tts.n_problems", 0), ("laws.n_boot", -1)]
    for path, value in demo:
        cases.append(Case(f"demo {path}", ("demo", "--quick", "--config", "d.yaml"), path.split(".")[-1],
                          {"d.yaml": _yaml(_over({"plan_a100": {}, "latency": {}, "tts": {}, "laws": {}}, path,
                                                 value))}))
    profile = [("memory_bandwidth_bytes_per_s", float("inf")), ("peak_flops_per_s.bf16", -1), ("memory_bytes", 0),
               ("name", 5), ("memory_bandwidth_bytes_per_s", True), ("peak_flops_per_s", "fast"), ("bogus", 1),
               ("memory_bandwidth_bytes_per_s", ...), ("compute_efficiency", 1e6), ("compute_efficiency", 0),
               ("layer_overhead_s", -1.0)]
    for path, value in profile:
        needle = path.split(".")[0]
        path = f"profile.{path}"
        body = json.dumps(_over(PROFILE_OK, path, value)).replace("Infinity", "1e999")
        cases.append(Case(f"hardware {path}={value!r:.10}", (*PREDICT, "--hardware", "hw.json"), needle,
                          {"hw.json": body}))
        cases.append(Case(f"plan hardware {path}={value!r:.10}", ("plan", "--law", "law.json", "--hardware",
                                                                 "hw.json", "--params", "1e9", "--tokens", "1e9"),
                          needle, {"hw.json": body}))
    law = [("params.E", -5), ("params.alpha", -0.5), ("law", "gompertz"), ("params.A", ...), ("params.B", "big"),
           ("params.eps", True), ("params.alpha", 3.0), ("params.bogus", 1.0)]
    for path, value in law:
        needle = {"law": "gompertz"}.get(path, path.split(".")[-1])
        body = json.dumps(_over(LAW, path, value))
        cases.append(Case(f"plan law {path}={value!r:.10}", ("plan", "--law", "l2.json", "--params", "1e9",
                                                              "--tokens", "1e9"), needle, {"l2.json": body}))
        cases.append(Case(f"lifetime law {path}={value!r:.10}", ("lifetime", "--law", "l2.json", "--loss-target",
                                                                  "2.9", "--aspect-ratio", "256"), needle,
                          {"l2.json": body}))
    csv_bad = [("ragged row", "N,D,loss\n1e8,2e9,3.1\n2e8,4e9\n", "row"),
               ("huge value", "N,D,loss\n1e8,2e9,3.1\n" + "1" * 400 + ",4e9,3.0\n", "N"),
               ("negative N", "N,D,loss\n1e8,2e9,3.1\n-2e8,4e9,3.0\n", "N"),
               ("text loss", "N,D,loss\n1e8,2e9,3.1\n2e8,4e9,low\n", "loss"),
               ("no loss column", "N,D\n1e8,2e9\n2e8,4e9\n", "loss"),
               ("nan loss", "N,D,loss\n1e8,2e9,3.1\n2e8,4e9,nan\n", "loss")]
    for name, body, needle in csv_bad:
        cases.append(Case(f"fit csv {name}", ("fit", "--data", "d.csv", "--no-plot", "--bootstrap", "0",
                                              "--law", "chinchilla"), needle, {"d.csv": body}))
    rec = {"key": "k", "label": "d64x1", "backend": "own", "shape": {"d_model": 64, "n_layers": 1, "n_heads": 2,
                                                                     "vocab_size": 97},
           "n_params": 1, "workload": {"batch": 1, "input_len": 4, "output_len": 4}, "prefill_s": 0.01,
           "decode_s": 0.02, "total_s": 0.03}
    lat_bad = [("decode_s Infinity", json.dumps({**rec, "decode_s": 1e999}), "Infinity"),
               ("decode_s a string", json.dumps({**rec, "decode_s": "fast"}), "decode_s"),
               ("decode_s missing", json.dumps({k: v for k, v in rec.items() if k != "decode_s"}), "decode_s"),
               ("shape not a dict", json.dumps({**rec, "shape": "d64x1"}), "shape"),
               ("negative total", json.dumps({**rec, "total_s": -1.0}), "total_s")]
    for name, line, needle in lat_bad:
        for cmd in (("latency", "calibrate", "bad.jsonl"), ("latency", "plot", "bad.jsonl", "--hardware",
                                                            "generic-cpu")):
            cases.append(Case(f"{cmd[1]} record {name}", cmd, needle, {"bad.jsonl": line + "\n" + line + "\n"}))
    cases.append(Case("tts run duplicate problem ids", ("tts", "run", "c.yaml"), "duplicate", {
        **dup, "p.jsonl": '{"problem_id": "a", "question": "1 +1", "gold": "2"}\n'
                          '{"problem_id": "a", "question": "2 +1", "gold": "3"}\n'}))
    return cases


def _unique(cases: list[Case]) -> list[Case]:
    seen: dict[str, int] = {}
    out = []
    for c in cases:
        k = seen[c.id] = seen.get(c.id, 0) + 1
        out.append(c if k == 1 else Case(f"{c.id} #{k}", c.args, c.needle, c.files))
    return out


def _output_cases() -> list[Case]:
    """An output path that cannot be one: a file where a directory goes, a directory where a file goes, a path
    under a file. Checked before any work."""
    a_file, a_dir = {"taken": "not a directory\n"}, {"taken": None}
    specs = [
        (("fit", "--no-plot", "--bootstrap", "0", "--out", "taken"), a_file),
        (("fit", "--no-plot", "--bootstrap", "0", "--save", "taken"), a_dir),
        (("fit", "--no-plot", "--bootstrap", "0", "--out", "taken/sub"), a_file),
        ((*PLAN, "--out", "taken"), a_file),
        ((*PLAN, "--out", "taken/sub"), a_file),
        (("tts", "analyze", "--wu2025", "--no-plot", "--out", "taken"), a_file),
        (("demo", "--quick", "--out", "taken"), a_file),
        (("latency", "measure", "lat.yaml", "--out", "taken"), a_dir),
        (("latency", "measure", "lat.yaml", "--out", "taken/r.jsonl"), a_file),
        (("latency", "calibrate", "lat.jsonl", "--out", "taken"), a_dir),
        (("latency", "calibrate", "--bian2025", "--out", "taken"), a_dir),
        (("latency", "plot", "lat.jsonl", "--hardware", "generic-cpu", "--out", "taken"), a_dir),
        (("sweep", "sweep.yaml", "--out", "taken"), a_file),
        (("train", "t.yaml", "--out", "taken"), a_file),
        (("tts", "mini", "--quick", "--no-plot", "--out", "taken"), a_file),
        (("select", "select_micro", "--out", "taken"), a_file),
        (("tts", "run", "o.yaml"), a_file),
    ]
    cases = []
    for args, files in specs:
        extra = {"t.yaml": _yaml(TRAIN_OK)} if args[0] == "train" else {}
        if args[:2] == ("tts", "run"):
            extra = {"o.yaml": _yaml(_over(TTS_OK, "out_dir", "taken"))}
        cases.append(Case(f"output {' '.join(args[:2])} {args[-1]} ({'file' if files is a_file else 'dir'})", args,
                          "taken", {**files, **extra}))
    return cases


def _newcomer_cases() -> list[Case]:
    """What a new user tried that was once a traceback or a silent wrong answer (issue 30 item 8) and its siblings."""
    rows = "".join(f"{n:.3g},{20 * n:.3g},{2 + 400 / n ** 0.34 + 400 / (20 * n) ** 0.28:.5f}\n"
                   for n in (1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10))
    first = rows.splitlines()[0] + "\n"
    fit = ("fit", "--data", "d.csv", "--law", "chinchilla", "--no-plot", "--bootstrap", "0", "--baseline", "none")
    fit_json = ("fit", "--data", "d.json", "--law", "chinchilla", "--no-plot", "--bootstrap", "0", "--baseline", "none")
    runs = [{"N": float(r.split(",")[0]), "D": float(r.split(",")[1]), "loss": float(r.split(",")[2])}
            for r in rows.splitlines()]
    absurd = {"law": "chinchilla", "params": {"E": 1.69, "A": 1e200, "B": 410.7, "alpha": 0.34, "beta": 0.28}}
    huge_e = {"law": "chinchilla", "params": {"E": 1e6, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}}
    lat = (Path(__file__).parents[2] / "src/infscale/latency/data/cpu-records-own.jsonl").read_text().splitlines()

    def lat_with(path: str, value: object) -> str:
        r = json.loads(lat[0])
        node = r
        *head, last = path.split(".")
        for k in head:
            node = node[k]
        node[last] = value
        return "\n".join([json.dumps(r), *lat[1:]]) + "\n"

    tts = json.dumps({"run": "r", "model": "m", "n_params": 10, "strategy": "greedy", "budget": 1, "problem_id": "p-1",
                      "gold": "1", "candidates": [], "ledger": {"policy_decode_flops": 5.0}})
    neg = tts.replace('"policy_decode_flops": 5.0', '"policy_decode_flops": -5.0')
    measured = "d_model,n_layers,n_heads,latency_s\n2048,16,16,{}\n1024,8,8,0.5\n"
    plan_m = (*PLAN, "--measured", "m.csv")
    return [
        Case("fit big integer D", fit, "field 'D'", {"d.csv": "N,D,loss\n" + rows + "1e8," + "9" * 400 + ",3.0\n"}),
        Case("fit one run", fit, "5 distinct points", {"d.csv": "N,D,loss\n" + first}),
        Case("fit two runs", fit, "5 distinct points", {"d.csv": "N,D,loss\n" + "".join(rows.splitlines(True)[:2])}),
        Case("fit identical runs", fit, "at one point", {"d.csv": "N,D,loss\n" + first * 7}),
        Case("fit json boolean N", fit_json, "row 1, field 'N': True is a boolean",
             {"d.json": json.dumps([{**runs[0], "N": True}, *runs[1:]])}),
        Case("fit json boolean loss", fit_json, "field 'loss': False is a boolean",
             {"d.json": json.dumps([*runs[:-1], {**runs[-1], "loss": False}])}),
        Case("fit loss 1e30", fit, "row 8, field 'loss'", {"d.csv": "N,D,loss\n" + rows + "2e8,4e9,1e30\n"}),
        Case("fit save under a file", (*fit, "--save", "f/x/law.json"), "--save", {"d.csv": "N,D,loss\n" + rows,
                                                                                   "f": "a file\n"}),
        Case("plan absurd law", ("plan", "--law", "l.json", "--params", "1e9", "--tokens", "1e10"), "l.json",
             {"l.json": json.dumps(absurd)}),
        Case("plan law E 1e6", ("plan", "--law", "l.json", "--params", "1e9", "--tokens", "1e10"), "predicts a loss",
             {"l.json": json.dumps(huge_e)}),
        Case("lifetime absurd law", ("lifetime", "--law", "l.json", "--loss-target", "2.9", "--aspect-ratio", "256"),
             "l.json", {"l.json": json.dumps(absurd)}),
        Case("plan measured inf", plan_m, "latency_s", {"m.csv": measured.format("inf")}),
        Case("plan measured nan", plan_m, "latency_s", {"m.csv": measured.format("nan")}),
        Case("plan measured zero layers", plan_m, "n_layers",
             {"m.csv": "d_model,n_layers,n_heads,latency_s\n2048,0,16,1.0\n"}),
        Case("plan measured twice", plan_m, "measured twice",
             {"m.csv": "d_model,n_layers,n_heads,latency_s\n2048,16,16,1.0\n2048,16,16,1.1\n"}),
        Case("calibrate absurd d_model", ("latency", "calibrate", "bad.jsonl"), "shape.d_model",
             {"bad.jsonl": lat_with("shape.d_model", 2 ** 40)}),
        Case("calibrate absurd layers", ("latency", "calibrate", "bad.jsonl"), "shape.n_layers",
             {"bad.jsonl": lat_with("shape.n_layers", 10 ** 6)}),
        Case("calibrate negative n_params", ("latency", "calibrate", "bad.jsonl"), "n_params",
             {"bad.jsonl": lat_with("n_params", -5)}),
        Case("calibrate boolean n_params", ("latency", "calibrate", "bad.jsonl"), "n_params",
             {"bad.jsonl": lat_with("n_params", True)}),
        Case("tts analyze negative FLOPs", ("tts", "analyze", "r.jsonl", "--no-plot"), "ledger.policy_decode_flops",
             {"r.jsonl": neg + "\n"}),
        Case("tts analyze duplicated unit", ("tts", "analyze", "r.jsonl", "--no-plot"), "r.jsonl:2",
             {"r.jsonl": tts + "\n" + tts + "\n"}),
        Case("tts analyze wu2025 and runs", ("tts", "analyze", "--wu2025", "runs", "--no-plot"), "--wu2025",
             {"runs": None}),
        Case("runs on a tts run", ("runs", "t"), "not a training run's record", {"t": None, "t/records.jsonl": tts + "\n"}),
        Case("runs on a tts mini study", ("runs", "s"), "runs/ holds tts runs",
             {"s": None, "s/runs": None, "s/runs/m": None, "s/runs/m/config.yaml": "run: m\n",
              "s/runs/m/records.jsonl": tts + "\n"}),
        Case("tts analyze a training sweep", ("tts", "analyze", "w", "--no-plot"), "a training run's record",
             {"w": None, "w/records.jsonl": json.dumps({"run_id": "a", "N": 1e6, "D": 2e7, "loss": 3.0}) + "\n"}),
        Case("tts mini typo'd recipe", ("tts", "mini", "wu2025_mni"), "did you mean 'wu2025_mini'"),
        Case("sweep typo'd recipe", ("sweep", "micro_swep"), "did you mean 'micro_sweep'"),
    ]


ALL = _unique(_file_cases() + _flag_cases() + _config_cases() + _output_cases() + _newcomer_cases())


@pytest.fixture()
def cwd(tmp_path):
    (tmp_path / "law.json").write_text(json.dumps(LAW))
    (tmp_path / "tts.yaml").write_text(_yaml(TTS_OK))
    (tmp_path / "lat.yaml").write_text(_yaml(MEASURE_OK))
    (tmp_path / "sweep.yaml").write_text(_yaml(SWEEP_OK))
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "a.txt").write_text(" ".join(f"In the beginning {i} was the word." for i in range(3000)))
    lat = Path(__file__).parents[2] / "src/infscale/latency/data/cpu-records-own.jsonl"
    (tmp_path / "lat.jsonl").write_bytes(lat.read_bytes())
    return tmp_path


def _write(root: Path, files: dict[str, str | bytes | None]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def test_the_table_is_large():
    assert len(ALL) >= 300 and len({c.id for c in ALL}) == len(ALL)


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_bad_input_is_one_line_exit_2(cwd, case):
    _write(cwd, case.files)
    before = sorted(p.relative_to(cwd) for p in cwd.rglob("*"))
    code, out, err = run_cli(case.args, cwd)
    assert "Traceback" not in err + out, err[-3000:]
    assert code == 2, (code, out[-500:], err[-1500:])
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("warning: ")]
    if lines and lines[0].startswith("error: "):  # ours
        assert len(lines) == 1 and case.needle in lines[0], err
    else:  # click's usage error (a flag of the wrong type): it names the flag
        assert case.needle in err, err
    after = sorted(p.relative_to(cwd) for p in cwd.rglob("*"))
    assert after == before, f"wrote {set(after) - set(before)}"


CONTROLS = [
    (PLAN, {}),
    (LIFE, {}),
    ((*PREDICT, "--hardware", "hw.json"), {"hw.json": json.dumps(PROFILE_OK)}),
    (("plan", "--law", "law.json", "--hardware", "hw.json", "--params", "1e8", "--tokens", "1e9"),
     {"hw.json": json.dumps(PROFILE_OK)}),
    (("tts", "run", "tts.yaml", "--json"), {}),
    (("tts", "run", "tts.yaml", "--max-problems", "2", "--json"), {}),
    (("latency", "calibrate", "lat.jsonl", "--n-fit", "3", "--json"), {}),
    (("runs", "empty.jsonl"), {"empty.jsonl": ""}),
    (("fit", "--data", "d.csv", "--law", "chinchilla", "--no-plot", "--bootstrap", "0", "--baseline", "none",
      "--json"), {"d.csv": "N,D,loss\n" + "".join(f"{n:.3g},{20 * n:.3g},{2 + 400 / n ** 0.34 + 400 / (20 * n) ** 0.28:.5f}\n"
                                                 for n in (1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10))}),
]


@pytest.mark.parametrize(("args", "files"), CONTROLS, ids=[" ".join(a[:2]) for a, _ in CONTROLS])
def test_controls_pass(cwd, args, files):
    _write(cwd, files)
    code, out, err = run_cli(args, cwd)
    assert code == 0, err[-2000:]


def test_a_valid_gsm_file_and_offset_load(tmp_path):
    from infscale.tts.core.tasks import GSMTask

    path = tmp_path / "p.jsonl"
    path.write_text('{"question": "1+1?", "gold": "2"}\n{"question": "2+1?", "gold": "3"}\n')
    problems = GSMTask(path=str(path), offset=1).load()
    assert [(p.problem_id, p.gold) for p in problems] == [("p-1", "3")]
