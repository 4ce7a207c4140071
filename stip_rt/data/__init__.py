"""Datasets and training targets."""
