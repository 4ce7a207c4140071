"""Evaluation: OKS AP (COCO, CrowdPose) and tracking metrics."""
