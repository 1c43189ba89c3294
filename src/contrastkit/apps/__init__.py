"""The applications refined embeddings exist for: semantic search, duplicate detection,
recommendation, and the HTTP service that serves them."""
