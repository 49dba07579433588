"""leadpilot connectors package."""
