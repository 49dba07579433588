"""Wiring: ``Deps`` built from settings — the connector, the routing box, the scorers."""
