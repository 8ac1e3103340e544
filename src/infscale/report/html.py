"""The demo's self-contained HTML report: one file, plots embedded as base64 PNG, tables of the run's own numbers.

`write_report(summary, path)` takes the summary `infscale.workflows.demo.run_demo` builds (every figure in it computed by that
run) and writes one HTML page with no external resources (no scripts, fonts or stylesheets fetched), so it opens
offline and in a headless browser without console errors.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infscale.tts.analysis.accuracy import strategy_label

__all__ = ["choice_label", "lifecycle_section", "write_report", "render_report", "img_tag", "table"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;
line-height:1.45;padding:0 1rem}
h1{font-size:1.7rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.86rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}figure{margin:1rem 0}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555}.rec{background:#eef7ee;border-left:4px solid #3a3;padding:.5rem .8rem}
.warn{color:#a60}.small{font-size:.8rem;color:#666}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    """Numbers with ``digits`` significant digits; None/NaN as a dash."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-"
        return f"{x:.{digits}g}"
    return str(x)


def img_tag(png: str | Path, alt: str) -> str:
    """An <img> with the PNG inlined as a data URI (the report needs no other file)."""
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def figure(png: str | Path | None, caption: str) -> str:
    if not png or not Path(png).exists():
        return f'<p class="warn">figure missing: {_esc(caption)}</p>'
    return f"<figure>{img_tag(png, caption)}<figcaption>{_esc(caption)}</figcaption></figure>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned text, the others formatted numbers."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{_esc(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td class="{"l" if i < left else ""}">{_esc(fmt(v))}</td>' for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


# ---------------------------------------------------------------------------------------------------------- sections
def _laws(s: dict[str, Any]) -> str:
    parts = [f"<p>Data: <b>{_esc(s['data'])}</b>, {s['n_runs']} runs; fit set <code>{_esc(s['fit_on'])}</code>.</p>"]
    for f in s["fits"]:
        boot = f.get("bootstrap")
        rows = []
        for name, value in f["params"].items():
            rows.append([name, value] + ([boot["low"][name], boot["high"][name]] if boot else []))
        lvl = f"{round(100 * boot['level'])}%" if boot else ""
        heads = ["parameter", "value"] + ([f"{lvl} low", f"{lvl} high"] if boot else [])
        parts.append(f"<h3>{_esc(f['law'])} ({_esc(f['fitter'])}, {f['n_fit']} fit / {f['n_held_out']} held out"
                     f"{', ' + str(boot['n_boot']) + ' bootstrap refits' if boot else ''})</h3>")
        parts.append(table(heads, rows))
    vrows = []
    for f in s["fits"]:
        for label, key in (("fit", "fit"), ("all runs", "all"), ("held out", "held_out")):
            v = f["validation"].get(key)
            if v:
                vrows.append([f["law"], label, v["n_runs"], v["mse"], v["r2"], v["spearman"], v["max_rel_err"]])
    parts.append("<h3>Validation</h3>")
    parts.append(table(["law", "set", "runs", "MSE", "R²", "Spearman", "max rel. error"], vrows, left=2))
    warns = [(f["law"], w) for f in s["fits"] for w in f["warnings"]]
    if warns:
        parts.append("<ul>" + "".join(f'<li class="warn">{_esc(law)}: {_esc(w)}</li>' for law, w in warns) + "</ul>")
    parts.append(figure(s.get("plot"), "Predicted vs actual loss, fit and held-out runs"))
    return "".join(parts)


def _latency(s: dict[str, Any]) -> str:
    wl = s["workload"]
    env = s.get("env", {})
    p = s["profile"]
    rows = [[r["label"], r["n_params"], r["aspect_ratio"], 1e3 * r["prefill_s"], 1e3 * r["decode_s"],
             1e3 * r["decode_iqr_s"], 1e3 * r["predicted_decode_s"], "fit" if r["used_for_fit"] else "held out"]
            for r in s["rows"]]
    err_rows = [[k, 100 * v] for k, v in s["held_out_decode_errors"].items()]
    return "".join([
        f"<p>Own backend on this machine ({_esc(env.get('device', 'cpu'))}, {_esc(env.get('torch_threads', '-'))} thread(s), "
        f"torch {_esc(env.get('torch', '-'))}); batch {wl['batch']}, {wl['input_len']} tokens in, {wl['output_len']} out, "
        f"{_esc(wl['dtype'])}; medians of the timed repeats.</p>",
        table(["shape", "params", "d/L", "prefill ms", "decode ms", "decode IQR ms", "predicted decode ms", "role"],
              rows),
        f"<p>Calibrated profile <b>{_esc(p['name'])}</b> from {_esc(', '.join(s['fit_on']))}: compute efficiency "
        f"{fmt(p.get('compute_efficiency'))}, memory efficiency {fmt(p.get('memory_efficiency'))}, attention efficiency "
        f"{fmt(p.get('attention_efficiency'))}, {fmt(1e3 * p.get('layer_overhead_s', float('nan')))} ms per layer, "
        f"{fmt(1e3 * p.get('step_overhead_s', float('nan')))} ms per step. Held-out decode error: median "
        f"{_pct(s['held_out_median_abs_error'])}, max {_pct(s['held_out_max_abs_error'])}.</p>",
        table(["held-out shape", "decode error %"], err_rows) if err_rows else "",
        figure(s.get("plot"), "Decode latency per token vs aspect ratio d/L (measured points, calibrated predictions)"),
    ])


def _plan_block(p: dict[str, Any], title: str, unit_note: str, max_rows: int = 16) -> str:
    if "infeasible" in p:
        msg = str(p["infeasible"])
        msg = msg[len("infeasible:"):].strip() if msg.lower().startswith("infeasible:") else msg
        return f"<h3>{_esc(title)}</h3><p class='warn'>infeasible: {_esc(msg)}</p>"
    b = p["best"]
    c = p["constraints"]
    out = [f"<h3>{_esc(title)}</h3>",
           f"<p>{p['n_candidates']:,} candidate shapes, {p['n_feasible']:,} feasible "
           f"(latency &le; {fmt(c['max_latency_s'])} s on <b>{_esc(p['hardware'])}</b>, {unit_note}"
           + (f"; the limit is {_esc(p['max_latency_from'])}" if p.get("max_latency_from") else "")
           + f"); planned in {fmt(p['plan_seconds'], 3)} s.</p>",
           f"<p class='rec'><b>Recommendation: {_esc(b['label'])}</b> &mdash; N = {fmt(b['n_params'])}, "
           f"D = {fmt(b['n_tokens'])}, d_ff = {b['d_ff']}, aspect ratio {fmt(b['aspect_ratio'])}, predicted loss "
           f"{fmt(b['loss'])}, latency {fmt(b['latency_s'])} s.</p>"]
    out += [f"<p class='warn'>{_esc(w)}</p>" for w in p.get("warnings", [])]
    for name, r in p.get("baselines", {}).items():
        verdict = (f"dominated by {r['n_dominating']} admissible shapes, e.g. {r['dominated_by']} (loss "
                   f"{fmt(r['dominated_by_loss'])}, {fmt(r['dominated_by_latency_s'])} s)" if r["n_dominating"]
                   else "not dominated")
        out.append(f"<p>Baseline <b>{_esc(name)}</b> ({_esc(r['label'])}): loss {fmt(r['loss'])}, latency "
                   f"{fmt(r['latency_s'])} s &rarr; {_esc(verdict)}.</p>")
    front = p["frontier"]
    k = next((i for i, r in enumerate(front) if r["label"] == b["label"]), len(front) // 2)
    start = min(max(k - max_rows // 2, 0), max(len(front) - max_rows, 0))
    rows = [[r["label"], r["n_params"], r["aspect_ratio"], r["loss"], r["latency_s"],
             "optimum" if r["label"] == b["label"] else ("" if r["feasible"] else "over limit")]
            for r in front[start:start + max_rows]]
    shown = f" ({len(rows)} of {len(front)} rows, around the optimum)" if len(rows) < len(front) else ""
    out.append(f"<p class='small'>Loss-vs-latency frontier{shown}; all rows in the frontier CSV.</p>")
    out.append(table(["frontier shape", "N", "d/L", "predicted loss", "latency s", ""], rows))
    out.append(figure(p.get("plot"), f"{title}: predicted loss vs latency, Pareto frontier and optimum"))
    return "".join(out)


def _plan(s: dict[str, Any]) -> str:
    a = s["a100"]
    wl = a["workload"]
    errs = a.get("bian2025_calibration_rel_errors") or []
    note = (f"batch {wl['batch']}, {wl['input_len']} in / {wl['output_len']} out, {wl['dtype']}; profile fitted to "
            f"Bian et al.'s {len(errs)} published latencies, max |error| "
            f"{_pct(max((abs(e) for e in errs), default=float('nan')))}")
    return _plan_block(a, "A 1B model for the A100", note) + _micro_block(s["micro"])


def _micro_block(m: dict[str, Any]) -> str:
    """The micro plan on the own law (the bundled shape study) and this machine's profile, and the bundled
    verification: the recommended and the baseline shape trained and timed on our machine."""
    wl = m["workload"]
    rec, base = m["recommended"], m["baseline"]
    held = [f for f in m["fits"] if f["law"] == m["preferred_law"]][0]
    ho = held["held_out"]
    sp = next((x for x in held["size_spearman"] if x["held_out"]), None)
    lo, hi = m["loss_range"]
    out = ["<h3>A micro model for this machine</h3>",
           f"<p>Own law <b>{_esc(m['preferred_law'])}</b>, fitted on this project's shape study (every size but "
           f"{_esc(m['held_out_group'])}; measured losses {fmt(lo)}-{fmt(hi)}): on the held-out size MSE "
           f"{fmt(ho['mse']['value'], 3)} [{fmt(ho['mse']['low'], 3)}, {fmt(ho['mse']['high'], 3)}], max relative "
           f"error {_pct(ho['max_rel_err']['value'])}"
           + (f", Spearman across its shapes {fmt(sp['spearman']['value'], 2)} [{fmt(sp['spearman']['low'], 2)}, "
              f"{fmt(sp['spearman']['high'], 2)}]" if sp else "") + ". "
           f"{m['n_candidates']:,} shapes within the study's rules at N &asymp; {fmt(rec['n_params'], 3)}, "
           f"D = {fmt(m['n_tokens'], 3)}; latency on <b>{_esc(m['hardware'])}</b> (batch {wl['batch']}, "
           f"{wl['input_len']} in / {wl['output_len']} out); the pick is the fastest shape within "
           f"{_pct(m['max_loss_increase'])} of the best predicted loss.</p>",
           f"<p class='rec'><b>Recommendation: {_esc(rec['shape'])}</b> &mdash; N = {fmt(rec['n_params'])}, aspect "
           f"ratio {fmt(rec['aspect_ratio'], 3)}, predicted loss {fmt(rec['predicted_loss'])}, decode "
           f"{fmt(1e3 * rec['predicted_decode_s'], 3)} ms. Deep baseline {_esc(base['shape'])} (aspect ratio "
           f"{fmt(base['aspect_ratio'], 3)}): {fmt(base['predicted_loss'])}, {fmt(1e3 * base['predicted_decode_s'], 3)} "
           f"ms.</p>"]
    out += [f"<p class='warn'>{_esc(w)}</p>" for w in rec.get("warnings", [])]
    v = m.get("verification") or []
    if v:
        rows = [[r["role"], r["shape"], r["n_params"], r["aspect_ratio"], r["predicted_loss"], r["measured_loss"],
                 100 * r["loss_error"], 1e3 * r["predicted_decode_s"], 1e3 * r["measured_decode_s"],
                 100 * r["decode_error"]] for r in v]
        r0, r1 = v[0], v[1]
        out.append("<p>Verification (bundled: both shapes trained on the plan's D and timed on this project's "
                   "2-core CPU, neither in any fit; <code>infscale study</code> re-runs it here):</p>")
        out.append(table(["role", "shape", "N", "d/L", "predicted loss", "measured loss", "loss error %",
                          "predicted decode ms", "measured decode ms", "decode error %"], rows))
        out.append(f"<p>Measured: {r0['shape']} decodes {fmt(r1['measured_decode_s'] / r0['measured_decode_s'], 3)}x "
                   f"faster than {r1['shape']} at a loss {_pct(r0['measured_loss'] / r1['measured_loss'] - 1)} "
                   "different.</p>")
    out.append(figure(m.get("plot"), "Micro model on this CPU: predicted loss vs latency, frontier, the deep "
                                     "baseline"))
    return "".join(out)


def _matched(rows: Sequence[dict[str, Any]]) -> str:
    """Wu et al.'s Table 1 question on our own models: does REBASE reach sampling's best accuracy with fewer FLOPs?"""
    if not rows:
        return ""
    names = {"ours": "our FLOPs (policy + PRM)", "wu2025": "Wu et al.'s 2NT (PRM free)"}
    items = []
    for r in rows:
        where = (f"{strategy_label(r['baseline_strategy'])} n={r['baseline_n']}, {fmt(r['baseline_flops'], 3)} "
                 f"FLOPs")
        if r["search_n"] is None:
            items.append(f"<li>{_esc(names.get(r['accounting'], r['accounting']))}: REBASE never reached sampling's "
                         f"best {100 * r['target_accuracy']:.1f}% ({_esc(where)}) at the budgets run</li>")
            continue
        ratio = r["flops_ratio"]
        verdict = f"{ratio:.2f}x fewer FLOPs" if ratio >= 1 else f"{1 / ratio:.2f}x more FLOPs"
        items.append(f"<li>{_esc(names.get(r['accounting'], r['accounting']))}: REBASE n={r['search_n']} reaches "
                     f"{100 * r['search_accuracy']:.1f}% at {fmt(r['search_flops'], 3)} FLOPs against sampling's best "
                     f"{100 * r['target_accuracy']:.1f}% ({_esc(where)}): <b>{verdict}</b></li>")
    return ("<h3>Search vs sampling at matched accuracy</h3><ul>" + "".join(items) + "</ul>"
            "<p>Measured points only (no interpolation between budgets). Wu et al., Table 1: REBASE matches sampling's "
            "accuracy with about 7x fewer FLOPs for Llemma-7B.</p>")


def _tts(s: dict[str, Any]) -> str:
    fr = [[p.get("label") or strategy_label(p["strategy"]), p["n"], p["flops"], 100 * p["accuracy"], 100 * p["ci_low"] if p["ci_low"] is not None
           else None, 100 * p["ci_high"] if p["ci_high"] is not None else None] for p in s["frontier"]]
    co = [[c["budget_flops"], (c.get("label") or strategy_label(c["strategy"])) if "strategy" in c else "none fits",
           c.get("n"),
           100 * c["accuracy"] if "accuracy" in c else None] for c in s["compute_optimal"]]
    model = s["points"][0]["model"] if s["points"] else "-"
    return "".join([
        f"<p>Policy <b>{_esc(model)}</b> with its process reward model (both trained by this project, bundled), "
        f"{s['n_problems']} synthetic arithmetic problems, {s['n_records']} records ({s['n_failed']} failed), "
        f"{fmt(s['run_seconds'], 3)} s. FLOPs: policy prefill (prefix-cached) + decode + reward model, per problem.</p>",
        figure(s.get("plot"), "Accuracy vs inference FLOPs per strategy, with the Pareto frontier"),
        _matched(s.get("matched_flops") or []),
        figure(s.get("saturation_plot"), "Where more samples stop paying: majority and weighted vote at n against "
                                         "their predicted limits"),
        "<h3>Pareto frontier</h3>",
        table(["strategy", "n", "FLOPs / problem", "accuracy %", "95% CI low", "95% CI high"], fr),
        "<h3>Compute-optimal choice per FLOPs budget</h3>",
        table(["budget FLOPs", "strategy", "n", "accuracy %"], co, left=0),
    ])


def choice_label(r: dict[str, Any]) -> str:
    """``model strategy n=...`` of a life-cycle row."""
    return f"{r['model']} {r['strategy']}" + ("" if r["strategy"] == "greedy" else f" n={r['n']}")


def lifecycle_section(r: Mapping[str, Any]) -> str:
    """The report's life-cycle section from a `LifecycleReport.to_dict()`."""
    b, br, unit = r["best"], r["breakdown"], r["unit"]
    acc = "-" if b.get("accuracy") is None else f"{100 * b['accuracy']:.1f}%"
    head = (f"<p class='rec'><b>Train {_esc(b['model'])}</b> (N = {fmt(b['n_params'])}) on "
            f"<b>{fmt(b['train_tokens'])}</b> tokens and decode with <b>{_esc(choice_label(b))}</b>: accuracy {acc}, "
            f"lifetime cost {fmt(b['cost'])} {unit}; binding: {_esc(', '.join(r['binding']) or 'none')} "
            f"({r['n_feasible']} of {r['n_configs']} configurations feasible).</p>")
    warn = "".join(f"<p class='warn'>{_esc(w)}</p>" for w in r["warnings"])
    costs = table(["part", "device-hours", "USD", "FLOPs"], [
        [k, br[f"{k}_device_hours"], br[f"{k}_usd"], br[f"{k}_flops"]] for k in ("train", "serve", "prm")])
    parts = [head, warn, "<h3>Cost breakdown of the optimum</h3>", costs,
             figure(r["files"].get("crossover_png"), "Optimal model size and strategy vs lifetime query volume"),
             figure(r["files"].get("frontier_png"), "Lifetime cost vs accuracy: the Pareto frontier")]
    changes = [c for k, c in enumerate(r["crossover"]) if c.get("feasible") and (k == 0 or c.get("changes"))]
    parts += ["<h3>Crossover in query volume (where the choice changes)</h3>",
              table(["from queries", "model", "N", "D", "strategy", "n", f"cost {unit}"],
                    [[c["queries"], c["model"], c["n_params"], c["train_tokens"], c["strategy"], c["n"], c["cost"]]
                     for c in changes], left=0)]
    if r.get("link"):
        lk = r["link"]
        held = lk.get("heldout", {})
        parts.append(f"<p>Loss -> accuracy link: {_esc(lk.get('form'))} fitted on {_esc(lk.get('source'))} "
                     f"({_esc(lk.get('metric', ''))}); held-out error on the larger-compute runs "
                     f"{fmt(held.get('mae_points'), 3)} points (max {fmt(held.get('max_points'), 3)}).</p>")
    loso = (r.get("curves") or {}).get("leave_one_size_out")
    if loso:
        parts += ["<h3>Test-time curves: leave-one-size-out error (accuracy points)</h3>",
                  table(["held-out model", "greedy accuracy", "mean error", "max error", "points"],
                        [[m, v["base_accuracy"], v["mae_points"], v["max_points"], v["n_points"]]
                         for m, v in loso["per_size"].items()])]
    return "".join(parts)


def render_report(summary: dict[str, Any]) -> str:
    """The report's HTML text."""
    t = summary.get("timings_s", {})
    timing_rows = [[k, v] for k, v in t.items()]
    sections = [
        ("1. Fitted scaling laws and their validation", _laws(summary["laws"])),
        ("2. Latency vs shape on this machine", _latency(summary["latency"])),
        ("3. Planning: Pareto frontier and recommendation", _plan(summary["plan"])),
        ("4. Test-time compute: accuracy vs FLOPs", _tts(summary["tts"])),
    ]
    if summary.get("lifecycle"):
        sections.append(("5. Life cycle: what to train and how to decode it, for a deployment",
                         lifecycle_section(summary["lifecycle"])))
    body = "".join(f"<h2>{_esc(h)}</h2>{b}" for h, b in sections)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>infscale demo report</title><style>{_CSS}</style></head><body>"
        "<h1>infscale demo report</h1>"
        f"<p class='small'>Run directory <code>{_esc(summary['out_dir'])}</code>, started "
        f"{_esc(summary.get('started_utc', '-'))}. Every number below was computed in this run.</p>"
        f"{body}<h2>Run time</h2>{table(['step', 'seconds'], timing_rows)}</body></html>"
    )


def write_report(summary: dict[str, Any], path: str | Path) -> Path:
    """Write the self-contained report; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(summary), encoding="utf-8")
    return path
