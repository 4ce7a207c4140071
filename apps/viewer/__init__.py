"""stip-viewer: the PyQt6 desktop viewer."""
