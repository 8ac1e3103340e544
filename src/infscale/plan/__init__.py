"""infscale.plan."""
