"""The reader: a Textual app to read generations blind, as they stream, and mark where they fall."""
