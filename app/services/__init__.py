"""Use cases: the rules of what a request may do, as plain functions.

Each takes what it uses (a database session, the live state, the configuration snapshot,
the PBX clock, the PBX's action gate) as arguments and raises a domain error
(``errors.py``) when the request cannot be done; the HTTP side (``app/api``) parses the
request, calls the use case and maps those errors to status codes in one place
(``app/api/errors.py``). Nothing here knows HTTP.
"""
