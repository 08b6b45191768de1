"""confer: a self-hostable video-meeting platform."""

__version__ = "0.1.0"
