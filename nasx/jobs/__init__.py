"""Jobs: every task the CLI runs, as a library call taking plain frozen dataclasses.

This is the layer where search spaces (``search_spaces``), strategies (``solvers``) and the engine
meet; the CLI (``nasx.cli``) only parses arguments, calls a job and prints its result.
"""
