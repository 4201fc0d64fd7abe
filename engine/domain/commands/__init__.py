"""The commands the desk takes, one module per area, each with its decisions."""
