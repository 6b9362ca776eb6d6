"""A run folder on disk: its typed contracts, the sample log and its records, what each logged
sample came to (its status; the outcomes), loading runs back."""

from r1eval._moved import forward_names

__getattr__ = forward_names(__name__)
