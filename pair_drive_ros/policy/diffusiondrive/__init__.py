"""IL planner package (diffusiondrive-style)."""
