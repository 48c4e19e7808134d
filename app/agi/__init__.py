"""FastAGI server: one session per call, bounded in time, never blocking another."""
