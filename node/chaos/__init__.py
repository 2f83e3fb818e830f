"""Fault injection for ehrnet on Chaos Toolkit.

Experiments (network_configs/chaos/*.json) are Chaos Toolkit experiments; this package is the extension they call
through Chaos Toolkit's Python provider (`actions`, `probes`), the control that brings a cluster up around an
experiment and expands its seeded fault schedule (`control`), the background workload (`workload`), the pure
invariant checker (`invariants`) over a recorded history (`history`), and the report and timeline (`report`).
`ehrnet chaos run` (`cli`, `runner`) runs one experiment through chaostoolkit-lib's `run_experiment`.
docs/CHAOS.md describes the experiments, the schedule rule and the invariants.
"""
