"""Datasets, trainers (IL, GRPO, selector), evaluation."""
