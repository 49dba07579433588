"""HubSpot: the connector (hubspot-api-client), its client plumbing, mapping, errors and settings."""
