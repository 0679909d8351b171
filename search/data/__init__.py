"""Data sources and their splits: each source loads its images into train/val/test splits."""
