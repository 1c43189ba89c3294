"""Views: the augmentations that make positive pairs (images: kornia; text: word edits or
dropout)."""
