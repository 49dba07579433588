"""The Salesforce dialect of the sandbox: OAuth, REST, SOQL, Bulk API 2.0 and the Metadata API."""
