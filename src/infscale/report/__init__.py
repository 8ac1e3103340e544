"""infscale.report."""
