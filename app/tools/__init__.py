"""Operators' tools that are not the running service: checking the configuration files,
rendering Asterisk's configuration from them, rendering the prompts' sound files."""
