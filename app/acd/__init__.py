"""The pure domain: calls, agents, queues, KPIs, expected wait. No I/O, no clock reads."""
