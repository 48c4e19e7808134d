"""IVR: the flow model and its checks, the pure flow engine, the survey (the calendar it
reads is the core's: app/acd/calendar.py).

The files are loaded (and reloaded) by app/config; the operators' tools are app/tools."""
