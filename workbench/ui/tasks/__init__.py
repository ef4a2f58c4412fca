"""The one way long work starts from the window: child-process runs relayed by a QThread, and
short background jobs on a thread pool. The only part of the UI that imports the engine."""
