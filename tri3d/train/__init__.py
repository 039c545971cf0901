"""Layer 3 training: configs and presets, losses, checkpoints, the training loop."""
