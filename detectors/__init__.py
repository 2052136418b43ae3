"""Built-in detector plugins, one subpackage per family, registered through entry points."""
