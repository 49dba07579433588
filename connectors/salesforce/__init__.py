"""Salesforce: the connector (simple-salesforce), its session, Bulk API 2.0, mapping, errors and settings."""
