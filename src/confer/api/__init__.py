"""The HTTP edge: FastAPI routes, dependencies and middleware over the domain services."""
