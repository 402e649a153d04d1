"""Embedded simulator: highway-env scenarios, experts, synthetic sensors and scene logs.

Import the sub-modules directly. `logs`, `sensors` and `raster` need numpy only; `hw`, `suite`,
`tracking`, `experts`, `closed_loop` and `generate` import highway-env.
"""
