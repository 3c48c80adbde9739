"""The music study (see README.md beside this file)."""
