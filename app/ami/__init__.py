"""AMI: sans-I/O parser, normaliser (AMI event -> domain event) and the connection."""
