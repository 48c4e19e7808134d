"""HTTP: FastAPI routers (thin), schemas, auth, the wallboard page."""
