"""The sweep page (offline HTML): AP against LUT+FF and against latency, the front
highlighted, and a table of every trial."""

from __future__ import annotations

import html
from pathlib import Path

PAGE = "index.html"
MARKERS = {"network": "o", "forest": "^"}


def _plot(rows: list[dict], x_key: str, x_label: str, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    done = [r for r in rows if r.get("status") == "done" and r.get(x_key) is not None]
    for family in sorted({r.get("family", "network") for r in done}):
        marker = MARKERS.get(family, "o")
        mine = [r for r in done if r.get("family", "network") == family]
        for on_front, color, what in ((False, "#9aa5b1", "trial"), (True, "#c0392b", "on the "
                                                                     "front (AP, LUT+FF, cycles)")):
            chosen = [r for r in mine if r["on_front"] == on_front]
            if chosen:
                ax.scatter([r[x_key] for r in chosen], [r["ap"] for r in chosen], s=30,
                           color=color, marker=marker, label=f"{family} {what}", zorder=3)
    bases = [r for r in done if r["reference"]]
    ax.scatter([r[x_key] for r in bases], [r["ap"] for r in bases], marker="*", s=160,
               facecolors="none", edgecolors="#2c3e50", zorder=5,
               label="base design" + (" of each family" if len(bases) > 1 else ""))
    ax.set_xlabel(x_label)
    ax.set_ylabel("validation AP (mean over the sweep's seeds)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def write_page(root: Path, state: dict) -> Path:
    rows = state["trials"]
    name = state["spec"]["name"]
    _plot(rows, "lut_ff", "Yosys LUT + FF (synth_xilinx, UltraScale+; estimate)",
          root / "ap_vs_lut_ff.png", f"sweep {name}: AP against size")
    _plot(rows, "cycles", "latency in clock cycles (measured in cocotb for the front)",
          root / "ap_vs_cycles.png", f"sweep {name}: AP against latency")
    keys = state["spec"]["space"].keys()
    head = ["trial", *keys, "status", "val AP", "LUT", "FF", "cycles", "front", "test AP (model, "
            "seeds)", "firmware test AP", "cocotb", "Fmax MHz", "ns", "s"]
    body = []
    for r in sorted(rows, key=lambda r: (not r.get("on_front"), -(r.get("ap") or 0))):
        v = r.get("verified") or {}
        cocotb = (f"{v['vectors_checked']:,} vectors, {v['mismatches']} mismatches"
                  if "vectors_checked" in v else (f"failed: {v['cause']}" if v else ""))
        cells = [r["trial"], *[r["settings"].get(k) for k in keys],
                 r.get("status") if r.get("status") == "done" else f"failed: {r.get('cause', '')}",
                 r.get("ap"), r.get("lut"), r.get("ff"), r.get("cycles"),
                 "yes" if r.get("on_front") else ("base" if r.get("reference") else ""),
                 v.get("model_test_ap_mean"), v.get("firmware_test_ap"), cocotb, v.get("fmax_mhz"),
                 v.get("latency_ns"), r.get("seconds")]
        style = " style='background:#fdecea'" if r.get("on_front") else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{_cell(c)}</td>" for c in cells) + "</tr>")
    spec = state["spec"]
    text = (f"<h1>fraudfpga sweep '{html.escape(name)}'</h1>"
            f"<p>{html.escape(spec['strategy'])} over {', '.join(map(html.escape, keys))}; "
            f"{len(rows)} trials on Ray ({html.escape(state['address'])}, {state['cpus']} CPUs) in "
            f"{state['seconds'] / 60:.1f} min on this machine. Objectives: validation AP (up, mean "
            f"over {spec['seeds']} seed(s); a network's QKeras model, a forest's selection fit "
            "on the input grid), Yosys LUT+FF (down), latency in cycles (down): one front over "
            "every family searched. The front's designs were verified: cocotb against each "
            "firmware's golden model (hls4ml C simulation; conifer C++ emulation) on the whole "
            "test set, place and route on the open family (Fmax, ns), the model's test-set AP "
            f"over {spec['front_seeds']} training seeds. Promote one with <code>fraudfpga sweep-promote "
            f"{html.escape(spec['source'])} --trial ID --run NAME</code>.</p>"
            "<img src='ap_vs_lut_ff.png' alt='AP vs LUT+FF'><img src='ap_vs_cycles.png' "
            "alt='AP vs cycles'>"
            "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join(body) + "</table>")
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:"
             "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:"
             "48%}")
    page = root / PAGE
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>sweep {html.escape(name)}"
                    f"</title><style>{style}</style></head><body>{text}</body></html>\n")
    return page
