"""Datasets: the referring-sample type, benchmark readers and the synthetic benchmark."""
