"""leadpilot sandbox package."""
