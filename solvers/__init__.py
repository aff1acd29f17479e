"""Search strategies, pure data (no JAX): the `Strategy` protocol (`strategy`), its shared state
(`_state`), random search, aging evolution and NSGA-II, budget filling (`fill`), DeepMAD's MILP (`mp`)."""
