"""Datasets and trainers: IL, GRPO (RL branch), selector, sequential baseline, on-policy data."""
