"""leadpilot scoring package."""
