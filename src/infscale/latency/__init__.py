"""infscale.latency."""
