"""Benchmarks behind `obert bench`: each times exactly what a user runs, side by side with the well-known
alternative, prints one table and a last line `ratio: X`. They live outside the stage folders (corpus/,
masking/, pretraining/) so that a stage's code holds no timing harness."""
