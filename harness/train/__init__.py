"""Training jobs on Ray (GPU workers when the cluster has them) and checkpoints."""
