"""Runs and GAN runs as plain values (dataclasses), their JSON and their validation. No TensorFlow."""
