"""Workbench: point-and-click transfer learning."""

__version__ = "0.1.0"
