"""The stored transcript: reads, search, exports and corrections."""
