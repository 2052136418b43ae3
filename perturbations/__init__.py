"""Built-in perturbation plugins, one module per perturbation, registered through entry points."""
