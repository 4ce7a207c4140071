"""Top-down pose estimation: crops, heatmap decoding, the estimator."""
