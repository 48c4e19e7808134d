"""HTTP: FastAPI routers (thin), their typed dependencies (deps.py), the one mapping of
domain errors to status codes (errors.py), schemas, auth, the wallboard page."""
