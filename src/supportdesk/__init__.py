"""supportdesk: the support desk of a software vendor as an async REST service."""

__version__ = "0.1.0"
