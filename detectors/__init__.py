"""Built-in detector plugins, one subpackage per paper, registered through entry points."""
