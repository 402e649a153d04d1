"""Evaluation and reporting: open and closed loop, results tables, PaIR attribution, pick logs."""
