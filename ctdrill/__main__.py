"""Allows `python -m ctdrill`."""

from ctdrill.cli.app import main

main()
