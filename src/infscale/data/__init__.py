"""infscale.data."""
