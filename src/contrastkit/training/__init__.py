"""Training: the loop (optimiser, schedule, clipping), checkpoints, resume, seeds, progress,
torch.distributed."""
