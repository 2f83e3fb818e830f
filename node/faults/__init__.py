"""Breaking a node on purpose, for fault-injection tests only: fault points, control routes, byzantine modes."""
