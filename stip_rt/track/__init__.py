"""Pose tracking: Kalman filter per person, association, lifecycle, smoothing."""
