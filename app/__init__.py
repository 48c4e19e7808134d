"""ACD/IVR service for Jobcenter København's contact centre (82 56 56 82)."""
