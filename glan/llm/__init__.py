"""Requests, the content-addressed cache, the concurrent sender and the backends behind it."""
