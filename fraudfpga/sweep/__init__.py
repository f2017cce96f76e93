"""Design-space sweeps on Ray: `fraudfpga sweep SWEEP.yaml`."""
