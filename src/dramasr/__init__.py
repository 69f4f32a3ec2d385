"""dramasr: who speaks each line of a long-form TV drama (DramaSR benchmark toolkit)."""

__version__ = "0.1.0"
