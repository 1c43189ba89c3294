"""Models: encoders (text, image, adapter), projection heads, momentum targets, saved-model
folders and the cache of base embeddings."""
