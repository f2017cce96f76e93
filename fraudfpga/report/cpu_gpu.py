"""The report's CPU/GPU details: TensorFlow's latency and throughput across batch sizes (the
mission's baseline, GPU or labelled CPU fallback) and the GPU results committed from lent
accelerator machines (docs/results/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import fmt, pyplot


def plot_baseline(baseline: dict, fpga: dict, out: Path) -> None:
    """TensorFlow's curves with the FPGA's one transaction and one instance's throughput; no
    figure beyond what a host can receive over the link is drawn."""
    plt = pyplot()
    rows = pd.DataFrame([r for r in baseline["results"] if "p50_latency_ms" in r])
    label = baseline["device"]["label"]
    styles = {"device_resident": "-", "host_copy": "--"}
    for metric, filename, ylabel in (
            ("p50_latency_ms", "latency_vs_batch.png", "latency per call, p50 (ms)"),
            ("transactions_per_s", "throughput_vs_batch.png", "transactions / s")):
        fig, ax = plt.subplots(figsize=(7.2, 4.6))
        for (model, compile_mode, variant), group in rows.groupby(["model", "compile", "variant"]):
            group = group.sort_values("batch_size")
            ax.plot(group["batch_size"], group[metric], styles[variant], marker=".",
                    label=f"{label}: {model}, {compile_mode}, {variant.replace('_', ' ')}")
        if metric == "p50_latency_ms":
            ax.scatter([1], [fpga["latency_ns"] * 1e-6], marker="*", s=180, color="black", zorder=5,
                       label=f"FPGA (network): {fpga['latency_cycles']} cycles = "
                             f"{fpga['latency_ns']:.0f} ns (compute only)")
        else:
            ax.axhline(fpga["throughput_per_instance_tx_s"], color="black", lw=1.2,
                       label=f"FPGA (network), one instance at II={fpga['initiation_interval_cycles']:g}"
                             f" on {fpga['timed_on']}")
        ax.set(xscale="log", yscale="log", xlabel="batch size (transactions per call)", ylabel=ylabel,
               title=f"TensorFlow on {baseline['device']['name']} ({label})")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3, which="both")
        fig.tight_layout()
        fig.savefig(out / filename, dpi=100)
        plt.close(fig)


def baseline_section(baseline: dict) -> tuple:
    device = baseline["device"]
    rows = pd.DataFrame([r for r in baseline["results"] if "p50_latency_ms" in r])
    best = (rows.sort_values("p50_latency_ms").groupby(["batch_size", "variant"]).head(1)
            .sort_values(["variant", "batch_size"]))
    table = [[r.variant.replace("_", " "), fmt(int(r.batch_size)), f"{r.model}, {r.compile}",
              f"{r.p50_latency_ms:.3f}", f"{r.p99_latency_ms:.3f}", f"{r.transactions_per_s:,.0f}"]
             for r in best.itertuples()]
    where = f"{device['name']} ({device['label']})"
    text = [f"TensorFlow {device['tensorflow']} on {where}, measured on this machine: latency per "
            "call and throughput across batch sizes (p50 of repeated calls after warm-up). "
            "'device resident': the batch is already on the device; 'host copy': copy and "
            "read-back included. The serving decision above uses the faster back ends; these "
            "curves are the mission's TensorFlow baseline.",
            "![latency](latency_vs_batch.png)", "![throughput](throughput_vs_batch.png)"]
    if device["type"] == "CPU":
        text.append("**CPU fallback**: no GPU was visible to TensorFlow on this machine, so these "
                    "are CPU figures, not GPU figures.")
    return ("CPU/GPU details: TensorFlow across batch sizes", text,
            ["variant", "batch", "model, compile", "p50 ms", "p99 ms", "tx/s (p50)"], table)


GPU_RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def committed_gpu_results(folder: Path = GPU_RESULTS) -> list[tuple[Path, dict]]:
    """The results of `gpu_standalone.py` committed from lent accelerator machines."""
    import json

    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    return [(path, json.loads(path.read_text())) for path in files]


def gpu_platform_rows(folder: Path = GPU_RESULTS) -> list[list[str]]:
    """Rows of the first screen's model x platform table for each committed GPU result (the
    float twin or the forest, one transaction and peak throughput; no load curve was measured
    there)."""
    rows = []
    for path, r in committed_gpu_results(folder):
        one, best = r["batch1_best"], r["throughput_best"]
        p99 = f" / {one['p99_us']:.1f}" if one.get("p99_us") is not None else ""
        rows.append([r["model"], f"GPU: {r['device_name']}, {r['framework']}, {r['date']}",
                     "as the same model's CPU row", f"{one['p50_us']:.1f}{p99} us (batch 1, measured "
                     f"there; {one['mode']}, {one['variant']})", "not measured under load",
                     "not measured under load", r["device_name"],
                     f"peak {best['transactions_per_s']:,.0f} tx/s at batch "
                     f"{best['batch_size']:,} ({path.name})"])
    return rows


def gpu_results_section(folder: Path = GPU_RESULTS) -> tuple:
    """Committed results of `gpu_standalone.py` from a lent accelerator machine, each labelled
    with its card and date: they were not measured on this run's machine."""
    rows = []
    for path, r in committed_gpu_results(folder):
        one, best = r["batch1_best"], r["throughput_best"]
        rows.append([r["model"], f"{r['device_name']} ({r['device']})", r["date"],
                     f"{r['framework']} {', '.join(f'{k} {v}' for k, v in r['versions'].items())}",
                     f"{one['p50_us']:.1f} us ({one['mode']}, {one['variant']})",
                     f"{best['transactions_per_s']:,.0f} tx/s at batch {best['batch_size']:,} "
                     f"({best['mode']}, {best['variant']})", path.name])
    text = (["Measured by `gpu_baseline/gpu_standalone.py` on lent accelerator machines, not on "
             "this run's machine, with the weights of the run that was exported then; committed "
             "under docs/results/."] if rows else
            ["No GPU results are committed yet (docs/results/): no accelerator machine has run "
             "`gpu_baseline/gpu_standalone.py` for this project."])
    return ("GPU results (committed)", text,
            ["model", "device", "date", "framework", "batch-1 p50", "best throughput", "file"]
            if rows
            else None, rows or None)
