"""leadpilot's sandbox CRM: a loopback HTTPS server speaking the Salesforce and HubSpot REST
dialects over one record store, with a seeded simulated sales world behind it.

Public entry points: ``sandbox.server.SandboxServer`` (start/stop or context manager; ``.info``
is the contract JSON), ``sandbox.context.Faults``, ``sandbox.admin.parse_faults``,
``sandbox.world.simulation.World``. ``python -m sandbox`` / ``leadpilot sandbox serve`` run it. See
``sandbox/README.md``. This package imports nothing from the rest of leadpilot.
"""
