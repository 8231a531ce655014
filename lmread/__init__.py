"""lmread: read long language-model generations blind and measure how long they keep making sense."""

__version__ = "0.1.0"
