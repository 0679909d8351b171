"""Reports written from stored results alone: a study's, an ablation's, a benchmark's."""
