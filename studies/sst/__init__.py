"""The sst study (see README.md beside this file)."""
