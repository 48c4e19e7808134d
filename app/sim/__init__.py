"""Simulated PBX: AMI server, FastAGI client, app_queue model and traffic."""
