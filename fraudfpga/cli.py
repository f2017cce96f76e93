"""The `fraudfpga` command: one subcommand per step of the flow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .errors import ToolMissing

STEP_HELP = {
    "data": "simulate (or load) transactions, compute features, split in time, fit the scaler",
    "train": "train the QKeras model, its float twin and the gradient-boosted reference",
    "hls": "convert the QKeras model to HLS firmware with hls4ml; C simulation = golden model",
    "rtl": "generate pipelined Verilog (II = 1) of the firmware's network with da4ml",
    "sim": "verify the RTL bit for bit against the C simulation with cocotb; latency and II",
    "synth": "synthesis: vendor HLS when installed (otherwise skipped, said so), Yosys always",
    "baseline": "TensorFlow latency/throughput of the float and QKeras models across batch sizes "
                "(GPU when visible, else CPU fallback)",
    "report": "write the FPGA/GPU comparison report (HTML + Markdown + PNG plots)",
    "pnr": "optional: place and route the RTL on a Lattice ECP5 with nextpnr for a real Fmax "
           "(minutes; not part of `all`)",
}


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML file merged over the defaults")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override one key, e.g. --set train.epochs=5")
    parser.add_argument("--run", help="run name (folder under --projects-dir)")
    parser.add_argument("--projects-dir", type=Path, default=Path("fpga_projects"),
                        help="where run folders live (default: fpga_projects)")
    parser.add_argument("--force", action="store_true", help="redo the step even if up to date")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudfpga",
        description="FPGA/GPU co-design flow for real-time fraud scoring. Each step writes "
                    "into fpga_projects/<run>/ and is skipped when its inputs are unchanged.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in STEP_HELP.items():
        step = commands.add_parser(name, help=text, description=text)
        _common(step)
        if name == "baseline":
            step.add_argument("--quick", action="store_true",
                              help="few batch sizes and calls (baseline.quick)")
        if name == "sim":
            step.add_argument("--sim", choices=["verilator", "icarus"],
                              help="simulator (rtl.simulator; default verilator)")
            step.add_argument("--vectors", help="how many test-set vectors, and how many random "
                                                "and edge vectors, to stream: all or a number "
                                                "(rtl.vectors, rtl.random_vectors)")
    flow = commands.add_parser("all", help="run every step in order",
                               description="Run " + " -> ".join(n for n in STEP_HELP if n != "pnr")
                                           + " (pnr runs only when named).")
    _common(flow)
    config = commands.add_parser("config", help="print the effective configuration as YAML")
    _common(config)
    bench = commands.add_parser("bench", help="run the benchmarks and write JSON")
    bench.add_argument("--out", type=Path, default=Path("fpga_projects/bench/bench.json"))
    bench.add_argument("--only", action="append", default=[],
                       help="run only this benchmark (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "bench":
            from .bench import run_benchmarks

            return run_benchmarks(args.out, args.only)
        overrides = list(args.overrides)
        if getattr(args, "sim", None):
            overrides.append(f"rtl.simulator={args.sim}")
        if getattr(args, "quick", False):
            overrides.append("baseline.quick=true")
        if getattr(args, "vectors", None):
            overrides += [f"rtl.vectors={args.vectors}", f"rtl.random_vectors={args.vectors}"]
        config = load_config(args.config, overrides)
        if args.run:
            config["run"] = args.run
        if args.command == "config":
            import yaml

            print(yaml.safe_dump(config, sort_keys=False), end="")
            return 0
        from .steps import OPTIONAL_STEPS, STEPS, open_run, print_metrics

        run = open_run(config, args.projects_dir)
        names = list(STEPS) if args.command == "all" else [args.command]
        for name in names:
            (STEPS | OPTIONAL_STEPS)[name](run, force=args.force)
        if set(names) & {"train", "hls"} and "report" not in names:
            print_metrics(run)
        return 0
    except (ConfigError, ValueError, FileNotFoundError, ToolMissing, RuntimeError) as error:
        print(f"fraudfpga {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fraudfpga {args.command}: interrupted; files already complete are kept, "
              "the interrupted step reruns next time", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
