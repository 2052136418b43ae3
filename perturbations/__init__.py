"""Built-in perturbation plugins, one module per family, registered through entry points."""
