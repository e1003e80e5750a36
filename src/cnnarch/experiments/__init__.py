"""The lecture's experiments: the degradation of deep plain nets (`degradation`, trained; its
results file read against its typed schema, `schema`) and the Inception module's cost with and
without 1x1 bottlenecks (`inception`, counted)."""
