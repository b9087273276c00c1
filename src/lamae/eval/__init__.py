"""Evaluation: embedding a store with a frozen encoder and linear probing on ICD-10 nodes."""
