"""The CRM side: one ``Connector`` protocol (``base``), the shared vocabulary, error classification,
retry policy and batching, one subpackage per CRM (``salesforce``, ``hubspot``) and the ``registry``
naming them."""
