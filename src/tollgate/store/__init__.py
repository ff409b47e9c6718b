"""Redis and nothing else: where grants live and spend is reserved atomically."""
