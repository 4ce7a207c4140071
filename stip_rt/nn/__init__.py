"""Networks in plain PyTorch: HRNet, STIP heads, the IaP op, the person detector."""
