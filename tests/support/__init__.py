"""Real servers for the tests: PostgreSQL, Redis and `confer serve`, started on loopback."""
