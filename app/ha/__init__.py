"""High availability: one owner per PBX, elected by a lease in PostgreSQL, hot standbys
beside it (docs/high-availability.md).

- ``lease.py``: the lease row (``pbx_leases``) taken, renewed and released, and the fence
  token every write of the owner carries;
- ``ownership.py``: the component that runs a process's owner parts (AMI link, state
  machine, writer, dialer, live board) only while it holds the lease, and its standby
  parts (the Redis mirror's reader) otherwise;
- ``relay.py``: the menu's events from a standby's FastAGI sessions to the owner,
  through a Redis stream, and the survey sampling every replica shares.
"""
