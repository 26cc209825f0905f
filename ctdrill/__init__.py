"""ctdrill: safe failure drills against the Linux connection-tracking table."""

__version__ = "0.1.0"
PREFIX = "ctd"
"""Every namespace, link, nft table and file ctdrill creates carries this prefix."""
