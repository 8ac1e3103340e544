"""`infscale latency ...`: measure shapes, predict latency on a hardware profile, calibrate profiles, plot.

Thin: each command loads its input, calls `infscale.latency`, and prints a rich table (or JSON with ``--json``).
Heavy imports (numpy, scipy, torch, matplotlib) happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from infscale.cli.output import console as cli_console
from infscale.cli.output import emit_json, print_warnings
from infscale.errors import InputError
from infscale.notices import notice_kind

latency_app = typer.Typer(help="Latency: measure shapes, predict them on any hardware, calibrate the predictor.",
                          no_args_is_help=True)


def _print_json(data: object) -> None:
    emit_json(data)


@latency_app.command("measure")
def measure(
    config: Path = typer.Argument(..., help="sweep YAML (see src/infscale/latency/data/cpu-sweep.yaml)"),
    out: Path = typer.Option(..., "--out", help="JSONL records file: appended to, and resumed from"),
    backend: str = typer.Option(None, help="override the config's backend: own | hf | vllm"),
    device: str = typer.Option(None, help="override the config's device: cpu | cuda | cuda:N | auto"),
    redo: list[str] = typer.Option(None, "--redo", help="measure this shape label again (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="print the records as JSON"),
) -> None:
    """Time prefill and decode of every shape of a sweep config (resumes: shapes already in --out are skipped)."""

    from infscale.workflows.latency import measure_config  # lazy: numpy, pydantic

    result = measure_config(config, out, backend=backend, device=device, redo=redo or ())
    records, name = result.records, result.backend
    if as_json:
        _print_json(records)
        return
    table = Table(title=f"latency ({name}, {records[0]['env']['device'] if records else '-'}) -> {out}")
    for col in ("shape", "params", "d/L", "prefill ms", "decode ms", "ms/token", "IQR decode ms"):
        table.add_column(col, justify="right")
    for r in records:
        n_new = r["workload"]["output_len"] - 1
        sp = r["spread"]["decode_s"]
        table.add_row(r["label"], f"{r['n_params'] / 1e6:.2f}M", f"{r['shape']['d_model'] / r['shape']['n_layers']:.0f}",
                      f"{r['prefill_s'] * 1e3:.1f}", f"{r['decode_s'] * 1e3:.1f}",
                      f"{r['decode_s'] / max(n_new, 1) * 1e3:.3f}", f"{(sp['q75'] - sp['q25']) * 1e3:.1f}")
    cli_console().print(table)


@latency_app.command("predict")
def predict(
    shapes: list[str] = typer.Option(..., "--shape", help="dDxL[hH][kvK][fF][vV] or a preset; repeatable"),
    hardware: str = typer.Option("a100-40gb-bian2025", help="hardware profile name or .json file"),
    batch: int = typer.Option(1, help="batch size"),
    input_len: int = typer.Option(128, help="prompt tokens"),
    output_len: int = typer.Option(256, help="generated tokens"),
    dtype: str = typer.Option("bf16", help="fp32 | bf16 | fp16 | fp8 | int8"),
    vocab_size: int = typer.Option(None, help="vocabulary for specs without a v suffix (default 50432)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Predict prefill, decode and total latency of shapes on a hardware profile."""

    from infscale.workflows.latency import predict_shapes  # lazy: numpy, pydantic

    res = predict_shapes(shapes, hardware, batch=batch, input_len=input_len, output_len=output_len, dtype=dtype,
                         vocab_size=vocab_size)
    rows = res["predictions"]
    for r in rows:
        if not r["fits_memory"]:
            print_warnings([f"{r['shape']} needs {r['memory_bytes'] / 1e9:.1f} GB for weights + KV cache at this "
                            f"workload; {res['hardware']} has {res['memory_bytes'] / 1e9:.0f} GB: it does not fit one "
                            "device, its prediction is not a latency it can reach"])
    if as_json:
        _print_json(res)
        return
    table = Table(title=f"predicted latency on {res['hardware']} (batch {batch}, {input_len} in / {output_len} out, "
                        f"{dtype})")
    for col in ("shape", "params", "prefill ms", "decode ms", "total s", "ms/token", "memory GB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["shape"], f"{r['n_params'] / 1e6:.1f}M", f"{r['prefill_s'] * 1e3:.2f}",
                      f"{r['decode_s'] * 1e3:.1f}", f"{r['total_s']:.3f}", f"{r['decode_per_token_s'] * 1e3:.3f}",
                      f"{r['memory_bytes'] / 1e9:.2f}" + ("" if r["fits_memory"] else " (does not fit)"))
    cli_console().print(table)
    print_warnings(dict.fromkeys(w.about(r["shape"]) if notice_kind(w) == "extrapolation" else w
                                 for r in rows for w in r["warnings"]))


@latency_app.command("calibrate")
def calibrate(
    records: Path = typer.Argument(None, help="JSONL records from `infscale latency measure`"),
    base: str = typer.Option("generic-cpu", help="profile whose peaks are kept and terms start the fit"),
    n_fit: int = typer.Option(5, help="fit on this many records spread over sizes and shapes; test on the rest"),
    fit_on: list[str] = typer.Option(None, "--fit-on", help="fit on these shape labels instead (repeatable)"),
    bian2025: bool = typer.Option(False, "--bian2025", help="calibrate from Bian et al.'s published A100 latencies"),
    out: Path = typer.Option(None, help="write the calibrated profile (JSON)"),
    name: str = typer.Option(None, help="name of the calibrated profile"),
    free: list[str] = typer.Option(None, "--free", help="terms to fit (repeatable; default: efficiencies, overheads, "
                                                        "and the cache terms when the base has a cache)"),
    statistic: str = typer.Option("median", help="one latency per record: median of its repeats, or min (robust "
                                                 "on a busy machine: interference only adds time)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Fit efficiency and overhead terms (least squares) and report held-out errors."""

    from infscale.configio import check_number  # lazy: pydantic
    from infscale.workflows.latency import (  # lazy: numpy, pydantic
        calibrate_on_bian2025,
        calibrate_on_records,
    )

    check_number("--n-fit", n_fit, low=1, inclusive=True)
    console = cli_console()
    if bian2025:
        cal = calibrate_on_bian2025(name, out)
        if as_json:
            _print_json(cal.summary)
            return
        p, s = cal.profile, cal.summary
        console.print(f"{p.name}: per-layer overhead {p.layer_overhead_s * 1e3:.3f} ms (open_lm), per-step "
                      f"{p.step_overhead_s * 1e3:.3f} ms; Morph-1B {s['morph_1b_s']:.2f} s, Open-LM-1B "
                      f"{s['open_lm_1b_s']:.2f} s, ratio {s['ratio']:.2f}x (published 1.84x)")
        _wrote(console, out)
        return
    if records is None:
        raise InputError("calibrate: give a RECORDS file or --bian2025")
    cal = calibrate_on_records(records, base=base, n_fit=n_fit, fit_on=fit_on, free=free, name=name, out=out,
                               statistic=statistic)
    if as_json:
        _print_json(cal.summary)
        return
    profile, result = cal.profile, cal.holdout
    console.print(f"calibrated {profile.name} on {', '.join(result.fit_labels)}: compute eff "
                  f"{profile.compute_efficiency:.3f}, memory eff {profile.memory_efficiency:.3f}, per-layer "
                  f"{profile.layer_overhead_s * 1e3:.4f} ms, per-step {profile.step_overhead_s * 1e3:.4f} ms, "
                  f"attention eff {profile.attention_efficiency:.3f}")
    table = Table(title="held-out decode latency")
    for col in ("shape", "error %"):
        table.add_column(col, justify="right")
    for lab, err in cal.summary["held_out_decode_rel_errors"].items():
        table.add_row(lab, f"{err * 100:+.1f}")
    console.print(table)
    if result.test_labels:
        console.print(f"median |error| {result.median_abs_error() * 100:.1f}%, max {result.max_abs_error() * 100:.1f}%")
    _wrote(console, out)


def _wrote(console, out: Path | None) -> None:
    """Say where the calibrated profile went, and how to use it (or that nothing was written)."""
    if out is None:
        console.print("profile not saved (give --out FILE.json to keep it)")
    else:
        console.print(f"wrote {out}: use it with --hardware {out}")


@latency_app.command("plot")
def plot(
    records: Path = typer.Argument(..., help="JSONL records from `infscale latency measure`"),
    hardware: str = typer.Option(..., help="calibrated profile name or .json file to draw the predictions"),
    out: Path = typer.Option(Path("latency_vs_aspect.png"), help="PNG to write"),
) -> None:
    """Decode latency vs aspect ratio d/L at (about) equal parameter counts, measured and predicted."""
    from infscale.configio import check_output_file  # lazy: pydantic
    from infscale.latency.io import get_profile, measurement_records  # lazy: numpy, pydantic, scipy
    from infscale.report.latency_plot import plot_latency_vs_aspect  # lazy: numpy, scipy

    check_output_file(out)
    path = plot_latency_vs_aspect(measurement_records(records), get_profile(hardware), out)
    typer.echo(f"wrote {path}")


@latency_app.command("hardware")
def hardware(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the hardware profiles (presets and shipped calibrations)."""

    from infscale.latency.io import get_profile, list_profiles  # lazy: numpy, pydantic, scipy

    profiles = [get_profile(n) for n in list_profiles()]
    if as_json:
        _print_json([p.to_dict() for p in profiles])
        return
    table = Table(title="hardware profiles")
    for col in ("name", "peak bf16 TFLOP/s", "bandwidth GB/s", "eff c/m", "ms/layer", "ms/step", "calibrated"):
        table.add_column(col, justify="left" if col in ("name", "calibrated") else "right")
    for p in profiles:
        peak = p.peak_flops_per_s.get("bf16", max(p.peak_flops_per_s.values()))
        span = p.calibrated_n_params
        calibrated = ("no (datasheet)" if not p.calibrated_on else
                      "yes" + ("" if span is None else f", on {span[0]:.3g}-{span[1]:.3g} params"))
        table.add_row(p.name, f"{peak / 1e12:.1f}", f"{p.memory_bandwidth_bytes_per_s / 1e9:.0f}",
                      f"{p.compute_efficiency:.2f}/{p.memory_efficiency:.2f}", f"{p.layer_overhead_s * 1e3:.3f}",
                      f"{p.step_overhead_s * 1e3:.3f}", calibrated)
    cli_console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(latency_app, name="latency")
