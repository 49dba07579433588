"""The HubSpot dialect of the sandbox: CRM v3 objects, search, properties and schema."""
