"""IL planner package (transfuser-style)."""
