"""contrastkit: refine embeddings with contrastive learning."""

__version__ = "0.1.0"
