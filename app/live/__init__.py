"""Live state: in-process or mirrored to Redis, and the event stream."""
