"""The one way long work starts from the window: child-process runs relayed by a QThread, and
short background jobs on a thread pool, those that need Keras sent to the model worker process.
The only part of the UI that imports the engine; none of it imports TensorFlow in the window."""
