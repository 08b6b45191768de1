"""Domain services: the rules of accounts, meetings and files, independent of HTTP."""
