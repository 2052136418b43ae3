"""The sweep engine: planning, Ray execution, the score cache and run records."""
