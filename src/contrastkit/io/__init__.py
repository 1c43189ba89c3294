"""Files: atomic writes, embedding files, the run folder. Imports nothing but `errors`."""
