"""skilljar-scim: SCIM 2.0 provisioning service and admin CLI."""

__version__ = "0.1.0"
