"""The lowest layer: problems worded for a person, events, atomic files, image formats."""
