"""Applications built from the nodes: `pair-drive run`, `demo`, `replay`; launch-file helpers."""
