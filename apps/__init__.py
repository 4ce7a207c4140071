"""End-user applications."""
