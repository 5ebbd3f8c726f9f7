"""What the tests and the benchmarks share: real server processes and realistic upload sets.

Neither ``tests`` nor ``bench`` imports the other; both import this package.
"""
