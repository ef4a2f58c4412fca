"""Child processes that run the engine away from the window: preload, event pipe, stop/pause."""
