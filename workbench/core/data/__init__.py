"""Images on disk: scanning, splits, and the tf.data pipeline."""
