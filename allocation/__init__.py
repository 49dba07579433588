"""leadpilot allocation package."""
