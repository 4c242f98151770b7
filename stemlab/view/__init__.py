"""View code: reads StemSets and results, draws them; never fetches, never computes metrics."""
