"""The configuration the service runs on: one registry, one loader, one snapshot.

- ``kinds.py``: the kinds of file (``queues.yaml``, ``work.yaml``, ...), one entry each;
  every other YAML file of the folder is a menu flow;
- ``loader.py``: reads and checks every file of the folder into one ``ConfigSnapshot``
  (``snapshot.py``), or raises ``ConfigInvalid`` with every error at its line
  (``errors.py``, ``yamlfile.py``);
- ``registry.py``: ``ConfigRegistry``, the running snapshot every consumer reads, swapped
  whole on a reload that succeeds.

docs/configuration.md says how to add a kind. Nothing is imported here, so that the pure
modules (``app/ivr/validate.py``) can use ``errors`` and ``yamlfile`` without the rest.
"""
