"""Person detectors behind one interface, and detections read from files."""
