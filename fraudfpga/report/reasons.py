"""The report's reason codes: SHAP values of the firmware's alerts (make explain)."""

from __future__ import annotations

import pandas as pd

from fraudfpga.hls.artifacts import EXPLAIN_SUMMARY, REASON_CODES
from fraudfpga.runfolder import RunFolder

from .common import load


def reason_codes_section(run: RunFolder, examples: int = 8) -> list[tuple]:
    summary = load(run, EXPLAIN_SUMMARY)
    table = pd.read_csv(run.path(REASON_CODES))
    top = sum(1 for c in table.columns if c.startswith("reason_"))
    shown = table.sort_values("logit", ascending=False).head(examples)
    id_column = "TRANSACTION_ID" if "TRANSACTION_ID" in table.columns else "row"
    rows = [[int(r[id_column]), f"{r['logit']:.3f}", "fraud" if r["label"] == 1 else "genuine"]
            + [f"{r[f'reason_{i}']} = {r[f'value_{i}']:.4g} ({r[f'contribution_{i}']:+.3f})"
               for i in range(1, top + 1)]
            for _, r in shown.iterrows()]
    add = summary["additivity"]
    alike = summary["float_vs_firmware"]
    same_top = next(v for k, v in alike.items() if k.startswith("same_top_"))
    text = [
        f"SHAP values of the firmware's own logit for each of the {summary['alerts']:,} test "
        f"transactions it flags (logit > {summary['threshold']:.4f}). Model function: "
        f"{summary['model_function']}; {summary['explainer']}; background: "
        f"{summary['background']['rows']} transactions of the {summary['background']['from']}; "
        f"expected value {summary['expected_value']['firmware']:.4f}. Every alert's codes are in "
        f"`{REASON_CODES}`.",
        f"Check: the attributions add up to the logit minus the expected value within "
        f"{add['max_abs_error']:.1e} (tolerance {add['tolerance']:g}): "
        f"{'passed' if add['ok'] else 'FAILED'}.",
        f"Float twin explained on the same alerts and background: Spearman correlation of the "
        f"global importance {alike['spearman']:.3f} (warning below {alike['min_spearman']}): "
        f"{'the two rank the features alike' if alike['alike'] else '**they rank the features differently**'}; "
        f"the same top {top} reasons for {same_top:.1%} of the alerts.",
        "![reason codes](shap_importance.png)",
        f"The {len(rows)} highest-scored alerts with their top {top} reasons (feature = raw "
        "value (contribution to the logit)):",
    ]
    return [("Reason codes of the firmware's alerts (make explain)", text,
             ["transaction", "logit", "label", *[f"reason {i}" for i in range(1, top + 1)]],
             rows)]

