"""Configuration: the settings root, secret-file sources, problems in words, the routing file."""
