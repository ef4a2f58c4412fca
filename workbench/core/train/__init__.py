"""Turning a config into a trained model: single runs and sweeps of runs."""
