"""The PySide6 desktop app. Talks to the core only through RunConfig values and events."""
