"""Wu et al. 2025 (REBASE) in miniature: do smaller policies with REBASE beat larger ones with majority voting at equal FLOPs?

A recipe (``recipes/wu2025_mini.yaml``, validated into `MiniStudyConfig`; unknown keys are errors) names the policy
sizes and their training budget, the PRM, the arithmetic problems, the strategies and their budgets, the search
settings and the comparison. `run_study` then, all on CPU:

1. trains every policy and the PRM with `infscale.tts.own_models.train.train_own_model` (a checkpoint already in the output directory
   is reused when it was trained with the same settings; one trained with other settings is an error, never a silent
   mix);
2. runs every strategy at every budget on every policy with `infscale.workflows.tts_run.run_tts` (append-only JSONL per policy:
   an interrupted study resumes where it stopped);
3. analyses all records with `infscale.tts.analysis` under both FLOPs accountings (ours: policy prefill + decode +
   reward model; Wu et al.'s: ``2 N T``, reward model not counted): greedy accuracy per size, the Pareto frontier, and a
   `Verdict` for every (larger model's majority-vote point, smaller model) pair: the smaller model's most accurate
   REBASE point within the larger one's FLOPs, and whether it matches or beats it;
4. writes ``report.json``, ``points.csv`` and one accuracy-vs-FLOPs figure per accounting.

The context is sized by the recipe (the longest prompt plus the longest path a strategy can write must fit the
policies' context, checked on load); the search also ends any path that fills the context as an unfinished
``length`` candidate, so a wrongly sized model degrades the results instead of crashing the run.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from infscale.configio import check_output_dir, save_config
from infscale.errors import InputError
from infscale.jsonsafe import finite
from infscale.report.tts_plots import plot_crossover, plot_model_strategy_grid
from infscale.tts.analysis import frontier_points, operating_points_from_records
from infscale.tts.analysis.accuracy import ACCOUNTINGS
from infscale.tts.analysis.verdicts import OUTCOMES, Verdict, crossover_rows, verdicts
from infscale.tts.core.config import RunConfig
from infscale.tts.core.record_files import read_problem_records
from infscale.tts.core.rewards import TorchPRM
from infscale.tts.core.tasks import ArithmeticTask
from infscale.tts.own_models.tokenizer import CharTokenizer
from infscale.workflows.reward_eval import scored_candidates
from infscale.workflows.tts_mini_config import (
    LikelihoodPRMSpec,
    MiniStudyConfig,
    ModelSpec,
)
from infscale.workflows.tts_run import run_tts

Log = Callable[[str], None]


# ----- results ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class TrainedModel:
    name: str
    kind: str
    """``policy`` or ``prm``."""
    path: str
    n_params: int
    steps: int
    train_s: float
    final_loss: float
    reused: bool
    """Loaded from an earlier run of the same recipe instead of trained now."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MiniReport:
    name: str
    models: list[dict[str, Any]]
    """Every policy: name, n_params, training (steps, seconds, loss) and greedy accuracy with its 95% interval."""
    prm: dict[str, Any]
    """The PRM: name, n_params, training, and its step-level AUC on held-out corrupted solutions."""
    frontier: dict[str, list[dict[str, Any]]]
    """Per accounting, the Pareto-optimal points by increasing FLOPs."""
    verdicts: list[Verdict]
    counts: dict[str, dict[str, int]]
    """Per accounting, how many verdicts had each outcome."""
    frontier_share: dict[str, dict[str, int]]
    """Per accounting: frontier points in all, those of a smaller model's ``small_strategy`` and of a larger model's
    ``large_strategy``."""
    small_strategy: str
    large_strategy: str
    n_records: int
    n_failed: int
    train_s: float
    """Training seconds of every model, from the checkpoints' logs."""
    run_s: float
    """Seconds spent running the strategies in this call (0 when every record was already there)."""
    analysis_s: float
    figures: dict[str, str] = field(default_factory=dict)
    flops_per_byte: float | None = None
    """The memory accounting's exchange rate (``analysis.memory_profile``'s peak FLOP/s over its bandwidth)."""
    crossover: list[dict[str, Any]] = field(default_factory=list)
    """The PRM-quality crossover: per (reward AUC, accounting) the verdict counts of the smaller models'
    ``small_strategy`` steered by a `noisy_verifier` of that AUC, and the mean accuracy gap (smaller - larger,
    points) over the decided verdicts."""
    crossover_at: dict[str, float | None] = field(default_factory=dict)
    """Per accounting: the least reward AUC from which on the smaller model wins most decided verdicts (``None``:
    at no AUC tried)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """One line per accounting: how often the smaller model's strategy beat, tied or lost to the larger one's."""
        out = []
        for acc in ACCOUNTINGS:
            c = self.counts[acc]
            decided = c["small"] + c["tie"] + c["large"]
            out.append(f"{_ACCOUNTING_NAMES[acc]}: smaller + {self.small_strategy} vs larger + {self.large_strategy} "
                       f"at no more FLOPs: smaller more accurate {c['small']}, tie {c['tie']}, larger more accurate "
                       f"{c['large']} of {decided}; {c['none']} more with no smaller point within the FLOPs")
        for acc, at in self.crossover_at.items():
            out.append(f"PRM-quality crossover, {_ACCOUNTING_NAMES[acc]}: "
                       + (f"the smaller model wins most verdicts from reward AUC {at:g} on" if at is not None
                          else "the smaller model wins most verdicts at no reward AUC tried"))
        return out


_ACCOUNTING_NAMES = {"ours": "our FLOPs (policy + PRM)", "wu2025": "Wu et al. FLOPs (2 N T, PRM not counted)",
                     "memory": "memory-aware (Wu et al. + KV bytes read at the profile's FLOPs per byte)"}


# ----- steps --------------------------------------------------------------------------------------------------------
def train_config(cfg: MiniStudyConfig, spec: ModelSpec):  # -> SmallTrainConfig
    """The `SmallTrainConfig` of one model of the recipe."""
    from infscale.tts.own_models.train import SmallTrainConfig  # lazy: torch

    shared = cfg.train.model_dump()
    if spec.lr is not None:
        shared["lr"] = spec.lr
    return SmallTrainConfig(d_model=spec.d_model, n_layers=spec.n_layers, n_heads=spec.n_heads,
                            max_steps=spec.max_steps, threads=cfg.threads, **shared)


def _train_one(cfg: MiniStudyConfig, spec: ModelSpec, kind: str, path: Path, log: Log,
               init_from: Path | None = None) -> TrainedModel:
    from infscale.train.model import load_weights  # lazy: torch
    from infscale.tts.own_models.train import small_shape, train_own_model  # lazy: torch

    want = asdict(train_config(cfg, spec))
    if path.exists():
        ckpt = load_weights(path)
        extra = ckpt.get("extra", {})
        had = dict(extra.get("config", {}))
        had.pop("threads", None)  # the thread count does not change what was trained
        had.pop("max_time_s", None)  # older checkpoints: a wall-clock cap that is no longer a setting
        same_start = extra.get("init_from") == (None if init_from is None else str(init_from))
        if ckpt.get("kind") != kind or had != {k: v for k, v in want.items() if k != "threads"} or not same_start:
            raise InputError(f"{path}: a {ckpt.get('kind')} checkpoint trained with other settings than the recipe's "
                             f"{spec.name!r}; delete it or choose another output directory")
        metrics, reused = extra.get("metrics", {}), True
        log(f"{kind} {spec.name}: reusing {path}")
    else:
        start = "" if init_from is None else f", from {spec.init_from}"
        log(f"{kind} {spec.name}: training (d_model {spec.d_model}, {spec.n_layers} layers{start}, "
            f"{spec.max_steps} steps)")
        metrics = train_own_model(kind, train_config(cfg, spec), path, log_every=max(1, spec.max_steps // 20),
                                  init_from=init_from)
        reused = False
        log(f"{kind} {spec.name}: {metrics['steps']} steps in {metrics['train_s']:.0f} s, "
            f"loss {metrics['final_loss']:.4f}")
    n_params = small_shape(train_config(cfg, spec), CharTokenizer().vocab_size).n_params
    return TrainedModel(name=spec.name, kind=kind, path=str(path), n_params=n_params, steps=int(metrics["steps"]),
                        train_s=float(metrics["train_s"]), final_loss=float(metrics["final_loss"]), reused=reused)


def train_models(cfg: MiniStudyConfig, out: Path, log: Log = print
                 ) -> tuple[list[TrainedModel], TrainedModel | None]:
    """Train (or reuse) every policy and the PRM under ``out/models``; ``None`` for the bundled PRM."""
    policies = [_train_one(cfg, spec, "policy", out / "models" / f"{spec.name}.pt", log) for spec in cfg.policies]
    prm = None
    if isinstance(cfg.prm, ModelSpec):
        base = next((Path(p.path) for p in policies if p.name == cfg.prm.init_from), None)
        prm = _train_one(cfg, cfg.prm, "prm", out / "models" / f"{cfg.prm.name}.pt", log, init_from=base)
    elif isinstance(cfg.prm, LikelihoodPRMSpec):
        prm = _fit_likelihood(cfg, cfg.prm, policies, out / "models" / f"{cfg.prm.name}.pt", log)
    return policies, prm


def _fit_likelihood(cfg: MiniStudyConfig, spec: LikelihoodPRMSpec, policies: Sequence[TrainedModel], path: Path,
                    log: Log) -> TrainedModel:
    """Fit (or reuse) a likelihood PRM over the policy ``spec.likelihood_of`` on every policy's own samples."""
    from infscale.train.model import load_weights  # lazy: torch
    from infscale.tts.own_models.train import SmallTrainConfig, train_likelihood_prm  # lazy: torch

    lm = next(p for p in policies if p.name == spec.likelihood_of)
    recipe = {**spec.model_dump(), "train": cfg.train.model_dump(), "policies": [p.name for p in policies]}
    if path.exists():
        extra = load_weights(path).get("extra", {})
        if extra.get("recipe") != recipe:
            raise InputError(f"{path}: a PRM fitted with other settings than the recipe's {spec.name!r}; delete it "
                             "or choose another output directory")
        metrics, reused = extra.get("metrics", {}), True
        log(f"prm {spec.name}: reusing {path}")
    else:
        log(f"prm {spec.name}: fitting a likelihood head over {lm.name} on {spec.n_problems} problems x "
            f"{spec.samples} samples of each policy")
        t = cfg.train
        fit_cfg = SmallTrainConfig(min_difficulty=t.min_difficulty, max_difficulty=t.max_difficulty,
                                   context_length=t.context_length, seed=t.seed, threads=cfg.threads)
        metrics = train_likelihood_prm(Path(lm.path), [Path(p.path) for p in policies], fit_cfg, spec.n_problems,
                                       spec.samples, path, log_every=1, recipe=recipe)
        reused = False
        log(f"prm {spec.name}: coef {metrics['coef']:.3g}, intercept {metrics['intercept']:.3g} from "
            f"{metrics['solutions']:.0f} solutions ({metrics['bad_steps']:.0f} bad steps) in {metrics['train_s']:.0f} s")
    return TrainedModel(name=spec.name, kind="prm", path=str(path), n_params=lm.n_params, steps=0,
                        train_s=float(metrics.get("train_s", 0.0)), final_loss=float("nan"), reused=reused)


def run_config(cfg: MiniStudyConfig, out: Path, policy: TrainedModel, prm: TrainedModel | None,
               reward_auc: float | None = None):  # -> RunConfig
    """The `infscale tts run` config of one policy (records under ``out/runs/<policy>``); with ``reward_auc``, the
    crossover's run: only the ``small_strategy``'s strategy, steered by a `noisy_verifier` of that AUC priced as the
    study's PRM (records under ``out/crossover/<policy>-auc<AUC>``)."""

    t = cfg.task
    reward: dict[str, Any] = {"name": "torch_prm", "params": {} if prm is None else {"checkpoint": prm.path}}
    strategies = [s.model_dump() for s in cfg.strategies]
    run_name, out_dir = policy.name, out / "runs"
    if reward_auc is not None:
        reward = {"name": "noisy_verifier", "params": {"auc": reward_auc, "seed": cfg.generation_seed,
                                                       "cost_as": "bundled" if prm is None else prm.path}}
        method = cfg.analysis.small_strategy.partition("+")[0]
        strategies = [s for s in strategies if s["name"] == method]
        run_name, out_dir = f"{policy.name}-auc{reward_auc:g}", out / "crossover"
    return RunConfig.model_validate({
        "run": run_name, "out_dir": str(out_dir), "model_name": policy.name, "seed": cfg.generation_seed,
        "task": {"name": "arith", "params": {"n_problems": t.n_problems, "difficulty": t.difficulty, "seed": t.seed,
                                             "max_value": t.max_value}},
        "generator": {"name": "torch", "params": {"checkpoint": policy.path, "seed": cfg.generation_seed,
                                                  "threads": cfg.threads}},
        "reward": reward,
        "strategies": strategies,
        "search": cfg.search.model_dump(),
    })


def run_policies(cfg: MiniStudyConfig, out: Path, policies: Sequence[TrainedModel], prm: TrainedModel | None,
                 log: Log = print) -> list[Path]:
    """Every strategy on every policy (resumable); returns the records files."""

    paths = []
    for policy in policies:
        summary = run_tts(run_config(cfg, out, policy, prm))
        log(f"{policy.name}: {summary.written} records written, {summary.skipped} already there, "
            f"{summary.failed} failed")
        paths.append(Path(summary.records_path))
    return paths


def run_crossover(cfg: MiniStudyConfig, out: Path, policies: Sequence[TrainedModel], prm: TrainedModel | None,
                  log: Log = print) -> dict[float, list[Path]]:
    """The smaller policies' ``small_strategy`` steered by a `noisy_verifier` of every ``analysis.reward_aucs``
    (resumable, like the main runs); returns the records files per AUC."""

    largest = max(p.n_params for p in policies)
    paths: dict[float, list[Path]] = {}
    for auc in cfg.analysis.reward_aucs:
        for policy in (p for p in policies if p.n_params < largest):
            rc = run_config(cfg, out, policy, prm, reward_auc=auc)
            summary = run_tts(rc)
            log(f"{rc.run}: {summary.written} records written, {summary.skipped} already there, "
                f"{summary.failed} failed")
            paths.setdefault(auc, []).append(Path(summary.records_path))
    return paths


def prm_step_auc(prm_path: str | None, difficulty: int, n_problems: int = 60, seed: int = 4242,
                 error_rate: float = 0.3) -> float:
    """The PRM's step-level AUC on held-out solutions with injected errors (difficulty of the study): the probability
    that a right step outscores a wrong one (ties count half)."""
    from infscale.tts.own_models.train import corrupted_solution  # lazy: torch

    task = ArithmeticTask(n_problems=n_problems, difficulty=difficulty, seed=seed)
    prm = TorchPRM(task, checkpoint=prm_path)
    rng = random.Random(seed)
    problems = task.load()
    texts, labels = [], []
    for p in problems:
        text, lab = corrupted_solution(p, rng, error_rate)
        texts.append(task.split_steps(text))
        labels.append(lab)
    pos, neg = [], []
    for p, steps, lab in zip(problems, texts, labels, strict=True):
        (scored,) = prm.score(p, task.prompt(p), [steps])
        for s, ok in zip(scored.scores, lab, strict=True):
            (pos if ok else neg).append(s)
    if not pos or not neg:
        return float("nan")

    a, b = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(((a > b) + 0.5 * (a == b)).mean())


def _point(p, accounting: str | None = None) -> dict[str, Any]:
    d = {"model": p.model, "n_params": p.n_params, "strategy": p.strategy, "n": p.n, "flops": p.flops,
         "wu2025_flops": p.wu2025_flops, "accuracy": p.accuracy, "ci_low": p.ci_low, "ci_high": p.ci_high,
         "n_problems": p.n_problems}
    if accounting:
        d["flops_used"] = p.flops_for(accounting)
    return d


def analyse(cfg: MiniStudyConfig, records: Sequence, policies: Sequence[TrainedModel], prm: TrainedModel | None,
            out: Path, *, plot: bool = True) -> tuple[MiniReport, list]:
    """Operating points, frontier, verdicts and figures from the study's records; returns the report and the points."""

    t0 = time.perf_counter()
    fpb = memory_flops_per_byte(cfg)
    points, _ = operating_points_from_records(records, n_bootstrap=cfg.analysis.n_bootstrap, random_state=0,
                                              flops_per_byte=fpb)
    # greedy has one candidate: its majority / best-of-n / weighted answers are the greedy answer again
    points = [p for p in points if not p.strategy.startswith("greedy+") or p.strategy == "greedy+greedy"]
    if not points:
        raise InputError(f"{out}: no record carries an answer to score")
    greedy = {p.model: p for p in points if p.strategy == "greedy+greedy"}
    models = []
    for m in policies:
        g = greedy.get(m.name)
        models.append({**asdict(m), "greedy_accuracy": None if g is None else g.accuracy,
                       "greedy_ci": None if g is None else [g.ci_low, g.ci_high]})
    prm_info: dict[str, Any] = {"name": "bundled"} if prm is None else asdict(prm)
    prm_info["step_auc"] = prm_step_auc(None if prm is None else prm.path, cfg.task.difficulty)
    small_s, large_s = cfg.analysis.small_strategy, cfg.analysis.large_strategy
    smallest = min(m.n_params for m in policies)
    largest = max(m.n_params for m in policies)
    frontier, all_verdicts, counts, share, figures = {}, [], {}, {}, {}
    for acc in ACCOUNTINGS:
        front = frontier_points(points, accounting=acc)
        frontier[acc] = [_point(p, acc) for p in front]
        vs = verdicts(points, acc, small_s, large_s)
        all_verdicts += vs
        counts[acc] = {o: sum(v.outcome == o for v in vs) for o in OUTCOMES}
        share[acc] = {"points": len(front),
                      "smaller_" + small_s: sum(p.strategy == small_s and p.n_params < largest for p in front),
                      "larger_" + large_s: sum(p.strategy == large_s and p.n_params > smallest for p in front)}
        if plot:
            path = plot_model_strategy_grid(points, out / f"accuracy_vs_flops_{acc}.png", accounting=acc,
                                            strategies=cfg.analysis.plot_strategies,
                                            title=f"{cfg.name}: accuracy vs inference FLOPs ({acc} accounting)")
            figures[acc] = str(path)
    report = MiniReport(
        name=cfg.name, models=models, prm=prm_info, frontier=frontier, verdicts=all_verdicts, counts=counts,
        frontier_share=share, small_strategy=small_s, large_strategy=large_s, n_records=len(records),
        n_failed=sum(1 for r in records if r.error is not None), train_s=0.0, run_s=0.0,
        analysis_s=time.perf_counter() - t0, figures=figures, flops_per_byte=fpb)
    return report, points


def memory_flops_per_byte(cfg: MiniStudyConfig) -> float:
    from infscale.latency.io import get_profile  # lazy: scipy

    return get_profile(cfg.analysis.memory_profile).flops_per_byte()


def analyse_crossover(cfg: MiniStudyConfig, report: MiniReport, points: Sequence, records: Sequence,
                      crossover: dict[float, list], out: Path, *, plot: bool = True) -> MiniReport:
    """The PRM-quality crossover from the crossover runs' records (``crossover``: records per AUC), beside the
    study PRM's own outcome AUC on the policies' samples (the main runs' ``sampling`` candidates)."""
    from infscale.tts.analysis.reward_quality import reward_quality  # lazy: scipy

    by_auc = {auc: operating_points_from_records(recs, n_bootstrap=cfg.analysis.n_bootstrap, random_state=0,
                                                 flops_per_byte=report.flops_per_byte)[0]
              for auc, recs in crossover.items()}
    rows, at = crossover_rows(points, by_auc, cfg.analysis.small_strategy, cfg.analysis.large_strategy)
    sampled = [r for r in records if r.iid and r.error is None]
    prm_info = dict(report.prm)
    if sampled:
        q = reward_quality(scored_candidates(sampled, cfg.make_task()))
        prm_info["outcome_auc_on_samples"] = q.outcome_auc
        prm_info["step_auc_on_samples"] = q.step_auc
    figures = dict(report.figures)
    if plot and rows:
        figures["crossover"] = str(plot_crossover(rows, out / "crossover.png",
                                                  prm_auc=prm_info.get("outcome_auc_on_samples"),
                                                  title=f"{cfg.name}: smaller + {cfg.analysis.small_strategy} vs "
                                                        f"larger + {cfg.analysis.large_strategy}, by reward AUC"))
    return replace(report, crossover=rows, crossover_at=at, prm=prm_info, figures=figures)


def _write_points(path: Path, points: Sequence) -> None:
    rows = [_point(p) for p in points]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def run_study(cfg: MiniStudyConfig, out: Path, *, log: Log = print, plot: bool = True) -> MiniReport:
    """Train, run and analyse (see the module docstring); everything goes under ``out``."""
    check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(out / "config.yaml", cfg)
    policies, prm = train_models(cfg, out, log)
    t1 = time.perf_counter()
    paths = run_policies(cfg, out, policies, prm, log)
    t2 = time.perf_counter()

    records = [r for p in paths for r in read_problem_records(p)]
    report, points = analyse(cfg, records, policies, prm, out, plot=plot)
    if cfg.analysis.reward_aucs:
        t3 = time.perf_counter()
        cross = run_crossover(cfg, out, policies, prm, log)
        t2 += time.perf_counter() - t3
        report = analyse_crossover(cfg, report, points, records,
                                   {auc: [r for p in ps for r in read_problem_records(p)] for auc, ps in cross.items()}, out,
                                   plot=plot)
    # training time from the checkpoints' own logs (also when they were reused); run time of this call
    report = replace(report, train_s=sum(m.train_s for m in policies) + (prm.train_s if prm else 0.0),
                     run_s=t2 - t1)
    _write_points(out / "points.csv", points)
    (out / "report.json").write_text(json.dumps(finite(report.to_json()), indent=1, allow_nan=False),
                                     encoding="utf-8")
    return report
