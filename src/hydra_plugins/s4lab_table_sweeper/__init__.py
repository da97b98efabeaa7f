"""Hydra sweeper that runs a paper table: one job per (row, seed) of `cfg.table`."""
