"""The pure domain: calls, agents, queues, KPIs, expected wait, the calendar. No I/O, no clock
reads; nothing from app/ivr (the menu builds on this, docs/layout.md)."""
