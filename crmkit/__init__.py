"""crmkit: customer-relationship analytics over flat files.

The library is the product; ``crmkit.cli`` is a thin shell over it. Core modules
never import typer or rich.
"""

__version__ = "0.1.0"
