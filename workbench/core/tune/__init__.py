"""Tuning studies (Optuna): many runs of one base config, their parameters drawn by a sampler."""
