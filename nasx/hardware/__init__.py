"""Hardware: measured latency tables (`latency`), profiling blocks on this device (`profile`), and
whole subnets measured to calibrate and validate a table (`subnets`)."""
