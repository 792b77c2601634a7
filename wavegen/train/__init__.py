"""Training: the loop, checkpoints, loggers, distributed set-up."""
