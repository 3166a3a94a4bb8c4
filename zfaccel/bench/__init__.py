"""Benchmarks: each op against its PyTorch anchor, measured in the same run, with % of the copy roofline."""
