"""Sources, sinks (writers) and drawing."""
