"""Training recipes that several detector plugins share (they import ``harness`` only)."""
