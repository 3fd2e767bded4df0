"""On-demand benchmarks (never part of the test suite): see docs/benchmarks.md.

.venv/bin/python -m tests.benchmarks [--quick] [--only B1,B3] [--backend sqlite|postgres]
"""
