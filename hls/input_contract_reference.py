"""Reference function of an imported model's input contract (imported/input_contract.json):
raw values of the model's columns in, the integer codes the firmware compares out.

Plain Python, no dependencies, so a host team can read it, run it, and port it: Python's float
is IEEE 754 binary64 and `round()` of a float rounds half to even, which is the contract's
arithmetic (C: nearbyint in the default rounding mode; Java: Math.rint).

    python input_contract_reference.py input_contract.json 12.5 0.0 3 ...
"""

import json
import math
import sys


def codes(values: list[float], contract: dict) -> list[int]:
    """The codes of one row (values in the contract's `features` order)."""
    low, high = contract["code_range"]
    if len(values) != len(contract["features"]):
        raise ValueError(f"{len(values)} values for {len(contract['features'])} inputs "
                         f"{contract['features']}")
    out = []
    for name, value, offset_hex, shift in zip(contract["features"], values,
                                              contract["offset_hex"], contract["shift"]):
        x = float(value)
        if math.isnan(x) or math.isinf(x):
            raise ValueError(f"input {name!r} is {x}: the firmware takes no missing or infinite "
                             "values; impute them first")
        scaled = (x - float.fromhex(offset_hex)) * math.ldexp(1.0, shift)
        out.append(min(max(round(scaled), low), high))
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(codes([float(v) for v in sys.argv[2:]], json.load(handle)))
