"""The weekly report: its data model, the live reads of each database, traffic, and its two writers."""
