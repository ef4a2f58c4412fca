"""Judging and using a trained run: evaluation, prediction, Grad-CAM, exports."""
