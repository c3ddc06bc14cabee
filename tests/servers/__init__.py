"""Real servers on 127.0.0.1 that tests talk to instead of mocking client libraries."""
