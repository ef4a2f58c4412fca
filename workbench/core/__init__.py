"""The Qt-free engine. Never import PySide6 here; import TensorFlow only inside functions."""
