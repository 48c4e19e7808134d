"""IVR: flow model, loader/validator for ivr_flows/, the pure flow engine, the calendar."""
