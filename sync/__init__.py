"""leadpilot sync package."""
