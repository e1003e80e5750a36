"""The lecture's experiments: the degradation of deep plain nets (`degradation`, trained), the
Inception module's cost with and without 1x1 bottlenecks (`inception`, counted) and the models
compared by accuracy against compute and size (`comparison`)."""
