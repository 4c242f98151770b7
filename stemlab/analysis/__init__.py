"""Analysis: plain results computed from StemSets (recombination checks, metrics, comparisons)."""
